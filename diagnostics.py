"""``iamap:diagnostics``: versions of QGIS and of the worker environment, to paste into bug reports."""

from __future__ import annotations

import html
import json
import platform
import sys

from qgis.core import Qgis, QgsProcessingException, QgsProjUtils

from .engine import __version__, contract
from .engine.host.status import check_environment, default_env_dir
from .utils.algorithm import IamapAlgorithm, write_text_atomically


def qgis_side_info() -> dict:
    """Versions of QGIS, Qt, GDAL, PROJ and Python as QGIS's own Python sees them."""
    info = {
        "iamap plugin": __version__,
        "qgis": Qgis.QGIS_VERSION,
        "qgis python": sys.version.split()[0],
        "proj (qgis)": f"{QgsProjUtils.projVersionMajor()}.{QgsProjUtils.projVersionMinor()}",
        "os": platform.platform(),
    }
    try:
        from osgeo import gdal  # ships with every QGIS

        info["gdal (qgis)"] = gdal.__version__
    except ImportError:
        info["gdal (qgis)"] = "unknown"
    status = check_environment()
    info["worker environment"] = f"{status.python} ({status.source})"
    info["worker environment ready"] = status.complete if status.complete else f"no: {status.problem}"
    info["managed environment folder"] = str(default_env_dir())
    return info


class DiagnosticsAlgorithm(IamapAlgorithm):
    """``iamap:diagnostics``: versions of both sides for bug reports (engine: :mod:`engine.diagnostics`)."""

    TOOL = contract.DIAGNOSTICS
    DISPLAY_NAME = "Diagnostics for bug reports"
    SHORT_DESCRIPTION = "Versions of QGIS and of IAMAP's worker environment, to paste into bug reports"
    TAGS = ("diagnostics", "versions", "bug report", "cuda", "gpu", "install")
    GROUP = "Help"
    GROUP_ID = "help"
    HELP = ("Reports the versions of QGIS, GDAL, PROJ and Python, where IAMAP's worker environment is, and "
            "the versions in it (torch with CUDA devices, timm, scikit-learn, umap, hdbscan, numpy, rasterio). "
            "Paste the report into bug reports. When the worker environment is missing, the QGIS part is still "
            "reported, with the command that installs the environment.")

    def process(self, parameters, context, feedback):
        # the log shows the report once, as lines (the worker's side comes as its own message); the outputs are
        # files, so Processing's "Results" lists their paths instead of printing the report again
        report = {"qgis side": qgis_side_info()}
        feedback.pushInfo("\n".join(f"{key}: {value}" for key, value in report["qgis side"].items()))
        try:
            report["worker side"] = self.run_engine({}, feedback)["worker"]
        except QgsProcessingException as exc:
            feedback.reportError(str(exc))
            report["worker side"] = {"error": str(exc)}
        outputs = {}
        for name, text in (("OUTPUT", json.dumps(report, indent=2)), ("REPORT", report_page(report))):
            path = self.parameterAsFileOutput(parameters, name, context)
            if path:
                write_text_atomically(path, text, name)
                outputs[name] = path
        return outputs


def report_page(report: dict) -> str:
    """The report as an HTML page: a table per side."""
    tables = "".join(
        f"<h2>{html.escape(side)}</h2><table>" + "".join(
            f"<tr><th>{html.escape(str(key))}</th><td>{html.escape(str(value))}</td></tr>" for key, value in
            info.items()) + "</table>" for side, info in report.items())
    return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>IAMAP diagnostics</title><style>"
            "body{font:14px sans-serif}th{text-align:left;padding-right:12px}td,th{border-bottom:1px solid #ddd}"
            f"</style></head><body><h1>IAMAP diagnostics</h1>{tables}</body></html>")
