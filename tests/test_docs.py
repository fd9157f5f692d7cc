"""The documentation: docs/tools.md matches the contract, and the Sphinx site builds offline with warnings as
errors, with every page and every picture it shows."""

from __future__ import annotations

import re
import subprocess
import sys
from html.parser import HTMLParser

import pytest

from engine.contract import TOOLS

from .conftest import REPO

DOCS = REPO / "docs"
PAGES = ("index", "install", "tools", "tutorial", "faq", "security", "migration")
#: The anchors the dialogs' Help button opens (utils/algorithm.py: blob/main/docs/tools.md#<tool>).
TOOL_ANCHORS = ("encoder", "reduction", "cluster", "similarity", "change", "ml", "diagnostics")


def load_tools_page():
    import importlib.util

    spec = importlib.util.spec_from_file_location("tools_page", REPO / "scripts" / "tools_page.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def github_slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lowercase, punctuation other than '-' and '_' dropped, spaces to '-'."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def test_tools_page_is_generated_from_the_contract_and_up_to_date():
    tools_page = load_tools_page()
    committed = (DOCS / "tools.md").read_text(encoding="utf-8")
    assert committed == tools_page.render(), "docs/tools.md is out of date: run scripts/tools_page.py"
    assert tuple(TOOLS) == TOOL_ANCHORS
    headings = re.findall(r"^## (.+)$", committed, re.MULTILINE)
    assert [github_slug(h) for h in headings] == list(TOOL_ANCHORS)
    for tool in TOOLS.values():  # every parameter and figure of the tool, in its own section
        section = committed.split(f"\n## {tool.name}\n", 1)[1].split("\n## ", 1)[0]
        for parameter in tool.parameters:
            assert f"**`{parameter.name}`** \u2014 *" in section, (tool.name, parameter.name)
            assert parameter.label.split("(")[0].strip() in section, (tool.name, parameter.label)
        for output in tool.outputs:
            assert f"**`{output.name}`**" in section, (tool.name, output.name)
    assert "`vit_small_patch14_reg4_dinov2.lvd142m`" in committed and "default: `224`" in committed


def test_github_slug_rule():
    assert github_slug("encoder") == "encoder"
    assert github_slug("Avoiding seams between tiles") == "avoiding-seams-between-tiles"
    assert github_slug("Can I run IAMAP offline?") == "can-i-run-iamap-offline"


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.images = set(), []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if attributes.get("id"):
            self.ids.add(attributes["id"])
        if tag == "img":
            self.images.append(attributes.get("src", ""))


@pytest.fixture(scope="module")
def built_site(tmp_path_factory):
    import importlib.util

    missing = [name for name in ("sphinx", "myst_parser") if importlib.util.find_spec(name) is None]
    assert not missing, (f"{missing} not installed: python3 -m engine.host.environment install --dev "
                         "(requirements-dev.txt)")
    out = tmp_path_factory.mktemp("html")
    result = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                             "-d", str(out / ".doctrees"), str(DOCS), str(out)], capture_output=True, text=True,
                            cwd=REPO, timeout=300)
    return out, result


def test_the_site_builds_with_warnings_as_errors(built_site):
    out, result = built_site
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stderr.strip() == "", result.stderr[-3000:]
    for page in PAGES:
        assert (out / f"{page}.html").is_file(), page


def test_every_picture_shown_exists_and_the_tool_anchors_resolve(built_site):
    out, result = built_site
    assert result.returncode == 0, result.stderr[-3000:]
    shown = 0
    for page in PAGES:
        collector = _Collector()
        collector.feed((out / f"{page}.html").read_text(encoding="utf-8"))
        for src in collector.images:
            assert (out / src).is_file() and (out / src).stat().st_size > 1000, (page, src)
            shown += 1
        if page == "tools":
            assert set(TOOL_ANCHORS) <= collector.ids, set(TOOL_ANCHORS) - collector.ids
    # the Markdown sources too (what GitHub shows): every picture they name is committed
    for source in DOCS.glob("*.md"):
        for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)", source.read_text(encoding="utf-8")):
            assert (DOCS / target).is_file(), (source.name, target)
    assert shown >= 12


def test_every_page_is_in_the_table_of_contents_and_links_to_pages_resolve():
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    toctree = index.split("```{toctree}", 1)[1].split("```", 1)[0]
    assert [line.strip() for line in toctree.splitlines() if line.strip() and not line.startswith(":")] == \
        ["install", "tutorial", "tools", "faq", "security", "migration"]
    for source in DOCS.glob("*.md"):
        text = source.read_text(encoding="utf-8")
        for page, anchor in re.findall(r"\]\(([a-z_]+)\.md(?:#([\w-]+))?\)", text):
            target = DOCS / f"{page}.md"
            assert target.is_file(), (source.name, page)
            if anchor:
                headings = re.findall(r"^#{1,3} (.+)$", target.read_text(encoding="utf-8"), re.MULTILINE)
                assert anchor in {github_slug(h) for h in headings}, (source.name, page, anchor)
