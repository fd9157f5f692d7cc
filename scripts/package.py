"""Build the release package: dist/iamap-<version>.zip and dist/plugins.xml (run by scripts/package.sh, in the venv
of the packaging tools, which are called as programs).

1. The plugin's files are taken from git: the tracked files as they are in the work tree (``git stash create``;
   untracked files are never packaged, and are named), less the ``export-ignore`` paths of .gitattributes (tests,
   benchmarks, scripts, development files).
2. qgis-plugin-ci packages them and writes plugins.xml. It cannot run on this repository itself: it archives
   ``plugin_path`` from git and names the zip's entries by replacing that path's text with the plugin folder's
   name, so with the plugin at the root (``plugin_path: .``) the zip has no top folder (``.ci/run``, ``README.md``
   at its root) or, with ``use_project_slug_as_plugin_directory``, every dot becomes ``iamap``
   (``__init__iamappy``); it also resets the work tree with ``git checkout -- .`` when it is done. So the files go
   into ``iamap/`` of a throw-away staging repository and qgis-plugin-ci runs there.
3. Before anything is written to dist/, the zip is checked as the plugin repository's validator would (scripts/
   package_checks.py) and scanned with bandit at medium and high severity; plugins.xml is checked for what QGIS's
   Plugin Manager reads from it. The zip is written under a temporary name and renamed at the end.

The zip is named ``iamap-<version>.zip``. qgis-plugin-ci names it ``iamap.<version>.zip`` and puts that name in
plugins.xml's ``file_name``, which stays: QGIS takes the plugin id from that element, up to its first dot, so
``iamap-2.0.0.zip`` there would make a plugin ``iamap-2`` that is no upgrade of ``iamap``. Only ``download_url`` is
changed to the file's real name.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import package_checks

REPO = Path(__file__).resolve().parent.parent
TOOLS_BIN = Path(sys.executable).parent  # the packaging tools' venv
PLUGIN = "iamap"


def run(command: list, cwd: Path, log: Path | None = None, ok_codes=(0,)) -> subprocess.CompletedProcess:
    """Run ``command``; on failure, stop with its output (also appended to ``log``)."""
    result = subprocess.run([str(part) for part in command], cwd=str(cwd), capture_output=True, text=True)
    if log is not None:
        with log.open("a", encoding="utf-8") as f:
            f.write(f"$ {' '.join(map(str, command))}\n{result.stdout}{result.stderr}\n")
    if result.returncode not in ok_codes:
        sys.exit(f"package: {Path(str(command[0])).name} failed ({result.returncode}):\n"
                 f"{(result.stdout + result.stderr)[-4000:]}")
    return result


def plugin_version() -> tuple[str, dict]:
    """metadata.txt's version and fields; the engine's __version__ (the iamap command's, pyproject.toml's) must
    be the same."""
    metadata = package_checks.read_metadata((REPO / "metadata.txt").read_text(encoding="utf-8"))
    engine = re.search(r'^__version__ = "([^"]+)"', (REPO / "engine" / "__init__.py").read_text(), re.M)
    if not engine or engine.group(1) != metadata["version"]:
        sys.exit(f"package: metadata.txt's version {metadata['version']} is not engine/__init__.py's "
                 f"{engine.group(1) if engine else '(none)'}")
    return metadata["version"], metadata


def stage(staging: Path, log: Path) -> Path:
    """The plugin's files in ``staging/iamap`` as the only commit of a new git repository; returns that folder."""
    tree = run(["git", "stash", "create"], REPO).stdout.strip() or "HEAD"
    untracked = run(["git", "ls-files", "--others", "--exclude-standard"], REPO).stdout.split()
    if untracked:
        print(f"package: not packaged (not tracked by git): {', '.join(untracked)}")
    archive = staging / "plugin.tar"
    run(["git", "archive", "--format=tar", f"--prefix={PLUGIN}/", "-o", archive, tree], REPO, log)
    run(["tar", "-xf", archive], staging, log)
    archive.unlink()
    problems = package_checks.tree_problems(staging / PLUGIN)
    if problems:
        sys.exit("package: the plugin's files cannot be packaged:\n  " + "\n  ".join(problems))
    shutil.copy(REPO / "scripts" / "qgis-plugin-ci.yml", staging / ".qgis-plugin-ci")
    identity = ["-c", "user.name=IAMAP packaging", "-c", "user.email=iamap-dev@users.noreply.github.com"]
    run(["git", "init", "-q"], staging, log)
    run(["git", *identity, "add", "-A"], staging, log)
    run(["git", *identity, "commit", "-q", "-m", "release"], staging, log)
    return staging / PLUGIN


def bandit_findings(folder: Path, log: Path) -> tuple[list[dict], int]:
    """Bandit's medium- and high-severity findings in ``folder`` (any confidence) and the files it scanned."""
    report = folder.parent / "bandit.json"
    # exit status 1 means findings, which are read from the report
    run([TOOLS_BIN / "bandit", "-r", folder, "--severity-level", "medium", "--format", "json", "--output", report,
         "--quiet"], folder.parent, log, ok_codes=(0, 1))
    data = json.loads(report.read_text(encoding="utf-8"))
    if data.get("errors"):
        sys.exit(f"package: bandit could not scan: {data['errors']}")
    scanned = len([name for name in data.get("metrics", {}) if name != "_totals"])
    return data["results"], scanned


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dist", type=Path, default=REPO / "dist", help="the folder written to (default: dist/)")
    parser.add_argument("--repository-url", default="",
                        help="the web address the dist folder is served at, for plugins.xml's download_url "
                             "(default: the dist folder's file:// address)")
    args = parser.parse_args(argv)
    dist = args.dist.resolve()
    url = args.repository_url or dist.as_uri()
    url = url if url.endswith("/") else url + "/"
    version, metadata = plugin_version()
    zip_name = f"{PLUGIN}-{version}.zip"
    (REPO / "build" / "logs").mkdir(parents=True, exist_ok=True)
    log = REPO / "build" / "logs" / "package.log"
    log.write_text("", encoding="utf-8")

    with tempfile.TemporaryDirectory(prefix="iamap-package-") as temporary:
        staging = Path(temporary) / "staging"
        staging.mkdir()
        stage(staging, log)
        run([TOOLS_BIN / "qgis-plugin-ci", "package", version, "--plugin-repo-url", url], staging, log)
        built = staging / f"{PLUGIN}.{version}.zip"
        problems = package_checks.zip_problems(built, version, PLUGIN)
        extracted = Path(temporary) / "extracted"
        with zipfile.ZipFile(built) as archive:
            archive.extractall(extracted)
            count = len(archive.namelist())
        findings, scanned = bandit_findings(extracted / PLUGIN, log)
        problems += [f"bandit {f['test_id']} ({f['issue_severity']}): {f['filename'].split(PLUGIN + '/', 1)[-1]}:"
                     f"{f['line_number']}: {f['issue_text']}" for f in findings]
        xml = (staging / "plugins.xml").read_text(encoding="utf-8")
        xml = xml.replace(f"<download_url>{url}{built.name}</download_url>",
                          f"<download_url>{url}{zip_name}</download_url>")
        problems += package_checks.plugins_xml_problems(xml, version, url + zip_name, PLUGIN,
                                                        metadata["qgisMinimumVersion"])
        if problems:
            print(f"package: {zip_name} is not written:\n  " + "\n  ".join(problems), file=sys.stderr)
            return 1
        dist.mkdir(parents=True, exist_ok=True)
        for name, source in ((zip_name, built), ("plugins.xsl", staging / "plugins.xsl")):
            partial = dist / f".{name}.partial"
            shutil.copyfile(source, partial)
            os.replace(partial, dist / name)
        partial = dist / ".plugins.xml.partial"
        partial.write_text(xml, encoding="utf-8")
        os.replace(partial, dist / "plugins.xml")  # last: a repository never lists a zip that is not there yet

    size = (dist / zip_name).stat().st_size
    print(f"package: {dist / zip_name}: {size / 1e6:.2f} MB, {count} files; bandit (medium and high severity): "
          f"no findings in {scanned} files")
    print(f"package: {dist / 'plugins.xml'}: a custom plugin repository, its zip at {url}{zip_name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
