"""Versions for bug reports: the one version helper, and the report."""

from __future__ import annotations

import sys

from engine import __version__
from engine.diagnostics import collect, format_report, installed_version, run_diagnostics
from engine.events import Reporter


def test_installed_version_reads_metadata_or_the_module_and_names_a_broken_import(monkeypatch):
    import sklearn

    assert installed_version("scikit-learn") == sklearn.__version__
    assert installed_version("sklearn", module="sklearn") == sklearn.__version__
    assert installed_version("no-such-distribution") == "not installed"
    monkeypatch.setitem(sys.modules, "iamap_broken_package", None)  # its import raises ImportError
    assert installed_version("iamap_broken_package", module="iamap_broken_package").startswith("not importable")


def test_the_report_has_the_worker_side_versions_and_caches():
    info = collect()
    assert info["iamap engine"] == __version__ and info["torch"].startswith("2.")
    for key in ("timm", "sklearn", "umap", "hdbscan", "skops", "rasterio", "gdal (rasterio)", "cuda available",
                "hf cache", "cpu native bf16"):
        assert key in info, key
    text = format_report(info)
    assert f"iamap engine: {__version__}" in text and len(text.splitlines()) == len(info)


def test_the_worker_tool_returns_the_report():
    assert run_diagnostics({}, Reporter())["worker"]["python"] == sys.version.split()[0]
