"""The plugin as QGIS sees it: metadata, provider, help, diagnostics, the missing-environment message, cancel."""

from __future__ import annotations

import configparser
import json
import re

import pytest

from .conftest import REPO

pytestmark = pytest.mark.qgis

REQUIRED_METADATA = ("name", "qgisMinimumVersion", "description", "about", "version", "author", "email", "repository",
                     "tracker", "homepage", "tags", "category", "icon", "experimental", "changelog",
                     "hasProcessingProvider")


def test_metadata_has_every_field_the_plugin_repository_requires():
    parser = configparser.ConfigParser()
    parser.read(REPO / "metadata.txt")
    general = parser["general"]
    missing = [key for key in REQUIRED_METADATA if not general.get(key, "").strip()]
    assert not missing
    assert general["hasProcessingProvider"] == "yes"
    assert general["qgisMinimumVersion"] == "3.22"
    assert (REPO / general["icon"]).exists()


def test_qgis_process_lists_the_iamap_algorithms(qgis):
    listing = qgis.process("list").stdout
    assert "IAMAP" in listing
    for algorithm in ("iamap:encoder", "iamap:reduction", "iamap:cluster", "iamap:ml", "iamap:similarity",
                      "iamap:change", "iamap:diagnostics"):
        assert algorithm in listing


def help_sections(text: str) -> dict[str, str]:
    """The sections of ``qgis_process help`` output ("Description", "Arguments", "Outputs") by title."""
    parts = re.split(r"^-{8,}\n([A-Za-z ]+)\n-{8,}\n", text, flags=re.M)
    return {title.strip(): body for title, body in zip(parts[1::2], parts[2::2])}


def unexplained_parameters(text: str) -> list[str]:
    """Parameter ids listed under Arguments without their own explanation in the Description.

    An explanation is the text after ``<b>ID</b>:`` up to the end of its paragraph, less the parameter's label,
    with at least three words of its own.
    """
    sections = help_sections(text)
    arguments = dict(re.findall(r"^([A-Z][A-Z0-9_]*): (.*)$", sections["Arguments"], flags=re.M))
    assert arguments, text
    description = sections["Description"]
    missing = []
    for parameter, label in arguments.items():
        found = re.search(rf"<b>{parameter}</b>:(.*?)(?:</p>|<p>|<h3>|$)", description, flags=re.S)
        explanation = re.sub(r"<[^>]+>", " ", found.group(1)).replace(label.strip(), " ") if found else ""
        if len(re.findall(r"[A-Za-z]{2,}", explanation)) < 3:
            missing.append(parameter)
    return missing


def test_help_explains_every_parameter_of_every_algorithm(qgis):
    algorithms = sorted(set(re.findall(r"\b(iamap:\w+)", qgis.process("list").stdout)))
    assert {"iamap:encoder", "iamap:reduction", "iamap:cluster", "iamap:ml", "iamap:similarity",
            "iamap:change", "iamap:diagnostics"} <= set(algorithms)
    unexplained = {algorithm: unexplained_parameters(qgis.process("help", algorithm).stdout)
                   for algorithm in algorithms}
    assert {algorithm: ids for algorithm, ids in unexplained.items() if ids} == {}
    diagnostics = qgis.process("help", "iamap:diagnostics").stdout
    assert "Paste the report into bug reports" in diagnostics


def test_diagnostics_reports_both_sides_once_in_the_log_and_as_json_and_html_files(qgis, tmp_path):
    report_path, page_path = tmp_path / "report.json", tmp_path / "report.html"
    result = qgis.run("iamap:diagnostics", {"OUTPUT": report_path, "REPORT": page_path})
    assert result["results"] == {"OUTPUT": str(report_path), "REPORT": str(page_path)}
    report = json.loads(report_path.read_text())
    log = qgis.process("run", "iamap:diagnostics").stdout
    assert log.count("qgis python:") == 1 and log.count("timm:") == 1 and "\\n" not in log  # once, not escaped
    page = page_path.read_text()
    assert "<h2>worker side</h2>" in page and f"<td>{report['worker side']['torch']}</td>" in page
    assert report["qgis side"]["qgis"].startswith("3.")
    assert report["qgis side"]["worker environment ready"] is True
    worker = report["worker side"]
    for key in ("torch", "timm", "sklearn", "umap", "hdbscan", "numpy", "rasterio", "cuda available"):
        assert key in worker
    assert worker["torch"].startswith("2.")
    assert worker["hdbscan"] != "unknown"


def test_plugin_loads_without_environment_and_tools_say_how_to_install(qgis, tmp_path):
    no_env = {"IAMAP_PYTHON": "", "IAMAP_ENV_DIR": str(tmp_path / "nothing-here")}
    listing = qgis.process("list", env=no_env)
    assert listing.returncode == 0 and "iamap:diagnostics" in listing.stdout
    qgis.run("iamap:diagnostics", {"OUTPUT": tmp_path / "r.json"}, env=no_env)
    error = json.loads((tmp_path / "r.json").read_text())["worker side"]["error"]
    assert "not installed" in error and "python3 -m engine.host.environment install" in error


def test_cancel_kills_the_worker_within_one_second(qgis):
    script = """
        import os, threading, time
        from qgis.core import QgsProcessingFeedback
        from iamap.utils.worker_runner import run_worker, WorkerCancelled
        feedback = QgsProcessingFeedback()
        progress = []
        feedback.progressChanged.connect(progress.append)
        cancelled_at = []
        def cancel():
            cancelled_at.append(time.monotonic())
            feedback.cancel()
        threading.Timer(3.0, cancel).start()
        try:
            run_worker("sleep", {"seconds": 60}, feedback)
            print("NOT CANCELLED")
        except WorkerCancelled:
            print(f"DELAY {time.monotonic() - cancelled_at[0]:.3f}")
            print(f"PROGRESS {max(progress):.1f}")
        """
    result = qgis.pyqgis(script)
    assert "DELAY" in result.stdout, result.stdout + result.stderr
    delay = float(result.stdout.split("DELAY ")[1].split()[0])
    assert delay < 1.0
    assert float(result.stdout.split("PROGRESS ")[1].split()[0]) > 0  # progress was relayed before the cancel
    assert "engine.worker sleep" not in _processes()


def test_worker_error_becomes_a_processing_exception_with_the_message_only(qgis):
    script = """
        from qgis.core import QgsProcessingFeedback, QgsProcessingException
        from iamap.engine.contract import Tool
        from iamap.utils.algorithm import IamapAlgorithm
        class Probe(IamapAlgorithm):
            TOOL = Tool("sleep", ())
        try:
            Probe().run_engine({"seconds": "not a number"}, QgsProcessingFeedback())
        except QgsProcessingException as exc:
            print("MESSAGE", exc)
        """
    result = qgis.pyqgis(script)
    message = result.stdout.split("MESSAGE ", 1)[1]
    assert "could not convert string to float" in message
    assert "Traceback" not in message


def _processes() -> str:
    import subprocess

    return subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout


def test_help_has_no_paragraph_break_inside_a_sentence_and_links_to_the_tools_page(qgis):
    """The help panel turns every line break into a paragraph break: each line of the help (and each paragraph)
    must end a sentence, a heading or a list item. The Help button opens the tool's section of docs/tools.md."""
    result = qgis.pyqgis("""
        import json
        from qgis.core import QgsApplication
        provider = QgsApplication.processingRegistry().providerById("iamap")
        print("HELP", json.dumps({a.id(): [a.shortHelpString(), a.helpUrl()] for a in provider.algorithms()}))
        """)
    assert "HELP" in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]
    helps = json.loads(result.stdout.split("HELP ", 1)[1].splitlines()[0])
    assert len(helps) == 7
    broken = {}
    for algorithm, (text, url) in helps.items():
        assert url.endswith(f"/blob/main/docs/tools.md#{algorithm.split(':')[1]}"), url
        # a complete list item on one line is a paragraph of its own (the curated backbones are such a list)
        for piece in re.split(r"\n|</p>|<p>|<h3>|</h3>", re.sub(r"<li>[^\n]*?</li>", "\n", text)):
            words = re.sub(r"<[^>]+>", "", piece).strip()
            if words and not re.search(r"[.!?:)]$|^[A-Z][a-z]+$", words):  # a sentence ends, or a heading
                broken.setdefault(algorithm, []).append(words[-60:])
    assert broken == {}



def test_the_encoder_help_states_the_numbers_of_the_default_model(qgis):
    """The output pixel size the help gives is the one the default backbone makes with the default tile size: the
    model timm builds is measured here, not the catalog's figures."""
    import timm

    from engine import catalog
    from engine.contract import ENCODER

    result = qgis.pyqgis("""
        import json
        from qgis.core import QgsApplication
        print("HELP", json.dumps(QgsApplication.processingRegistry().algorithmById("iamap:encoder").shortHelpString()))
        """)
    assert "HELP" in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]
    text = json.loads(result.stdout.split("HELP ", 1)[1].splitlines()[0])
    default = catalog.backbone(ENCODER["BACKBONE"].default)
    model = timm.create_model(default.timm_name, pretrained=False, num_classes=0, img_size=default.img_size)
    cells_per_tile = model.patch_embed.grid_size[0]  # the tile is resized to the model input, cut into patches
    size = ENCODER["SIZE"].default
    cell = size / cells_per_tile
    stated = re.search(r"patches of (\d+) px, a (\d+) px input\) and (\d+) px tiles, one output pixel covers "
                       r"(\d+) x (\d+) input pixels", " ".join(text.split()))
    assert stated, text[:600]
    assert [int(n) for n in stated.groups()] == [model.patch_embed.patch_size[0], model.patch_embed.img_size[0], size,
                                                 cell, cell]
    assert "16 x 16 input pixels" not in text  # what a /16 model would give, not the default /14
    cells = -(-512 // cell)
    assert f"a 512 px input at 10 m gives {cells:g} cells of {cell * 10:g} m: {cells * cell * 10:g} m" in " ".join(
        text.split())


def test_toolbox_names_fit_the_toolbox_width(qgis):
    """The toolbox, at its default width, shows about 30 characters of a name: longer ones were cut off."""
    result = qgis.pyqgis("""
        import json
        from qgis.core import QgsApplication
        provider = QgsApplication.processingRegistry().providerById("iamap")
        print("NAMES", json.dumps({a.id(): a.displayName() for a in provider.algorithms()}))
        """)
    names = json.loads(result.stdout.split("NAMES ", 1)[1].splitlines()[0])
    assert len(names) == 7 and {name: len(text) for name, text in names.items() if len(text) > 30} == {}
