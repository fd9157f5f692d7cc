"""``iamap:diagnostics``: versions of QGIS and of the worker environment, to paste into bug reports."""

from __future__ import annotations

import json
import platform
import sys

from qgis.core import (Qgis, QgsProcessingException, QgsProcessingOutputString, QgsProcessingParameterFileDestination,
                       QgsProjUtils)

from .engine import __version__
from .engine.host_environment import check_environment, default_env_dir
from .utils.algorithm import IamapAlgorithm


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
    NAME = "diagnostics"
    DISPLAY_NAME = "Diagnostics (versions for bug reports)"
    GROUP = "Help"
    GROUP_ID = "help"
    HELP = ("Reports the versions of QGIS, GDAL, PROJ and Python, where IAMAP's worker environment is, and "
            "the versions in it (torch with CUDA devices, timm, scikit-learn, umap, hdbscan, numpy, rasterio). "
            "Paste the report into bug reports. When the worker environment is missing, the QGIS part is still "
            "reported, with the command that installs the environment.")
    PARAMETER_HELP = {
        "OUTPUT": "Optional JSON file receiving the report.",
        "REPORT": "(output) The report as text.",
    }

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterFileDestination("OUTPUT", "Report file (JSON)", "JSON files (*.json)",
                                                                optional=True, createByDefault=False))
        self.addOutput(QgsProcessingOutputString("REPORT", "Report"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        report = {"qgis side": qgis_side_info()}
        for key, value in report["qgis side"].items():
            feedback.pushInfo(f"{key}: {value}")
        try:
            report["worker side"] = self.run_engine("diagnostics", {}, feedback)["worker"]
        except QgsProcessingException as exc:
            feedback.reportError(str(exc))
            report["worker side"] = {"error": str(exc)}
        text = json.dumps(report, indent=2)
        outputs = {"REPORT": text}
        path = self.parameterAsFileOutput(parameters, "OUTPUT", context)
        if path:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            outputs["OUTPUT"] = path
        return outputs
