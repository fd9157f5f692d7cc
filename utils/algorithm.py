"""Base class of IAMAP's Processing algorithms: help text, icon, and handing work to the worker."""

from __future__ import annotations

from pathlib import Path

from qgis.core import QgsCoordinateReferenceSystem, QgsProcessingAlgorithm, QgsProcessingException
from qgis.PyQt.QtGui import QIcon

from ..engine.errors import EnvironmentProblem
from .worker_runner import WorkerCancelled, WorkerError, run_worker

ICONS_DIR = Path(__file__).resolve().parent.parent / "icons"


def plugin_icon(name: str) -> QIcon:
    return QIcon(str(ICONS_DIR / f"{name}.svg"))


class IamapAlgorithm(QgsProcessingAlgorithm):
    """Subclasses set the class attributes and implement ``initAlgorithm`` and ``processAlgorithm``.

    ``HELP`` is the introduction of the help text and ``PARAMETER_HELP`` maps each parameter id to its
    explanation; :meth:`shortHelpString` lists them all, so ``qgis_process help`` explains every parameter.
    """

    NAME = ""
    DISPLAY_NAME = ""
    GROUP = ""
    GROUP_ID = ""
    ICON = "iamap"
    HELP = ""
    PARAMETER_HELP: dict[str, str] = {}

    def name(self):
        return self.NAME

    def displayName(self):  # noqa: N802
        return self.DISPLAY_NAME

    def group(self):
        return self.GROUP

    def groupId(self):  # noqa: N802
        return self.GROUP_ID

    def icon(self):
        return plugin_icon(self.ICON)

    def createInstance(self):  # noqa: N802
        return type(self)()

    def shortHelpString(self):  # noqa: N802
        parts = [self.HELP.strip()]
        if self.PARAMETER_HELP:
            parts.append("<h3>Parameters</h3>")
            parts.append("".join(f"<p><b>{pid}</b>: {text}</p>" for pid, text in self.PARAMETER_HELP.items()))
        return "\n".join(parts)

    def run_engine(self, tool: str, params: dict, feedback) -> dict:
        """Run ``tool`` in the worker; every failure becomes a ``QgsProcessingException`` with a clear message."""
        try:
            return run_worker(tool, params, feedback)
        except EnvironmentProblem as exc:
            raise QgsProcessingException(str(exc)) from exc
        except WorkerCancelled:
            raise QgsProcessingException(f"IAMAP {tool} was cancelled; the worker was stopped.") from None
        except WorkerError as exc:
            if exc.details:
                feedback.pushConsoleInfo(exc.details)
            raise QgsProcessingException(str(exc)) from None

    # Parameter helpers shared by the tools -------------------------------------------------------------

    def raster_path(self, parameters, name, context) -> tuple[str, object]:
        """The file behind a raster parameter (the worker reads files, not QGIS layers)."""
        layer = self.parameterAsRasterLayer(parameters, name, context)
        if layer is None:
            raise QgsProcessingException(f"{name}: no raster layer given or it could not be loaded.")
        if layer.providerType() != "gdal":
            raise QgsProcessingException(f"{name}: layer {layer.name()!r} is not a file raster (provider "
                                         f"{layer.providerType()}); save it as a GeoTIFF first (Export > Save As).")
        return layer.source().split("|")[0], layer

    def bands(self, parameters, name, context) -> list[int] | None:
        """Selected 1-based bands, or None for all bands."""
        return [int(b) for b in self.parameterAsInts(parameters, name, context)] or None

    def extent(self, parameters, name, context, crs: QgsCoordinateReferenceSystem) -> list[float] | None:
        """The extent parameter in ``crs`` as [xmin, ymin, xmax, ymax], or None when not set."""
        if parameters.get(name) in (None, ""):
            return None
        rect = self.parameterAsExtent(parameters, name, context, crs)
        if rect.isNull() or rect.isEmpty():
            return None
        return [rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum()]

    def enum_string(self, parameters, name, context) -> str:
        return self.parameterAsEnumString(parameters, name, context)
