"""``iamap:diagnostics``: versions of QGIS and of the worker environment, to paste into bug reports."""

from __future__ import annotations

import json
import platform
import sys

from qgis.core import Qgis, QgsProcessingException, QgsProjUtils

from .engine import __version__, contract
from .engine.host_environment import check_environment, default_env_dir
from .utils.algorithm import IamapAlgorithm, write_text_atomically


def qgis_side_info() -> dict:
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
    TOOL = contract.DIAGNOSTICS
    DISPLAY_NAME = "Diagnostics (versions for bug reports)"
    SHORT_DESCRIPTION = "Versions of QGIS and of IAMAP's worker environment, to paste into bug reports"
    TAGS = ("diagnostics", "versions", "bug report", "cuda", "gpu", "install")
    GROUP = "Help"
    GROUP_ID = "help"
    HELP = ("Reports the versions of QGIS, GDAL, PROJ and Python, where IAMAP's worker environment is, and "
            "the versions in it (torch with CUDA devices, timm, scikit-learn, umap, hdbscan, numpy, rasterio). "
            "Paste the report into bug reports. When the worker environment is missing, the QGIS part is still "
            "reported, with the command that installs the environment.")

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        report = {"qgis side": qgis_side_info()}
        for key, value in report["qgis side"].items():
            feedback.pushInfo(f"{key}: {value}")
        try:
            report["worker side"] = self.run_engine({}, feedback)["worker"]
        except QgsProcessingException as exc:
            feedback.reportError(str(exc))
            report["worker side"] = {"error": str(exc)}
        text = json.dumps(report, indent=2)
        outputs = {"REPORT": text}
        path = self.parameterAsFileOutput(parameters, "OUTPUT", context)
        if path:
            write_text_atomically(path, text, "OUTPUT")
            outputs["OUTPUT"] = path
        return outputs
