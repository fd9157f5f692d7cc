"""The similarity explorer in the QGIS desktop: click on a feature raster, see everything that looks like it.

The computation runs in a long-lived worker (:class:`utils.similarity_client.ExplorerServer`), so the canvas never waits
for it. :class:`utils.explorer_widgets.ExplorerMapTool` turns clicks and box drags into requests in the raster's CRS;
:class:`utils.explorer_widgets.ExplorerPanel` is the dock (raster, aggregation, threshold, clear, export);
:class:`SimilarityExplorer` ties them to the temporary similarity layer and ends the worker when the panel is closed or
QGIS quits.
"""

from __future__ import annotations

from qgis.core import (Qgis, QgsApplication, QgsCoordinateTransform, QgsCsException, QgsDataProvider, QgsGeometry,
                       QgsPointXY, QgsProject, QgsRasterLayer, QgsRectangle, QgsVectorLayer)
from qgis.PyQt import sip
from qgis.PyQt.QtCore import QObject, Qt, QTimer, pyqtSignal
from qgis.PyQt.QtWidgets import QFileDialog

from ..engine.errors import EnvironmentProblem
from .explorer_widgets import ExplorerMapTool, ExplorerPanel, ReferenceMarkers
from .similarity_client import ExplorerServer
from .styles import style_continuous

LAYER_NAME = "Similarity (IAMAP explorer)"


class SimilarityExplorer(QObject):
    """The tool as a whole: open() shows the panel and takes the canvas; closing the panel ends the worker."""

    updated = pyqtSignal(dict)  # each reply applied (tests and scripts wait on it)

    def __init__(self, iface, parent=None):
        super().__init__(parent)
        self.iface, self.canvas = iface, iface.mapCanvas()
        self.server: ExplorerServer | None = None
        self.layer: QgsRasterLayer | None = None
        self.last_reply: dict = {}
        self.panel = ExplorerPanel(iface.mainWindow())
        self.panel.hide()
        self.tool = ExplorerMapTool(self.canvas)
        self.markers = ReferenceMarkers(self.canvas)
        self.tool.clicked.connect(self._click)
        self.tool.dragged.connect(self._drag)
        self.panel.closed.connect(self.close)
        self.panel.raster_combo.layerChanged.connect(self._raster_changed)
        self.panel.aggregation_combo.currentIndexChanged.connect(self._aggregation_changed)
        self.panel.threshold_slider.valueChanged.connect(self._restyle)
        self.panel.clear_button.clicked.connect(self.clear)
        self.panel.selection_button.clicked.connect(self._add_selection)
        self.panel.export_button.clicked.connect(self._ask_export)
        QgsApplication.instance().aboutToQuit.connect(self.close)

    # -- opening and closing ----------------------------------------------------------------------------------
    def open(self) -> None:
        active = self.iface.activeLayer()
        if isinstance(active, QgsRasterLayer):
            self.panel.raster_combo.setLayer(active)
        self.iface.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.panel)
        self.panel.show()
        self.canvas.setMapTool(self.tool)

    def close(self) -> None:
        """End the worker and give the canvas back."""
        self._stop_server()
        if self.canvas.mapTool() is self.tool:
            self.canvas.unsetMapTool(self.tool)

    def unload(self) -> None:
        QgsApplication.instance().aboutToQuit.disconnect(self.close)
        self.close()
        self.canvas.scene().removeItem(self.markers.band)
        self.iface.removeDockWidget(self.panel)
        self.panel.deleteLater()

    def _raster_changed(self, layer) -> None:
        """Another feature raster: its worker starts at the next click. Deferred: this signal also comes while
        QGIS is removing layers, when removing the similarity layer at once would crash it."""
        if self.server is not None and (layer is None or layer.source() != self.server.raster):
            QTimer.singleShot(0, self._stop_server)

    def _stop_server(self, *_):
        """End the worker; the similarity layer goes too (its file is in the worker's folder)."""
        self._remove_layer()
        self.markers.clear()
        self.last_reply = {}
        if self.server is not None:
            self.server.stop()
            self.server.deleteLater()
            self.server = None

    # -- requests -----------------------------------------------------------------------------------------------
    @property
    def raster(self) -> QgsRasterLayer | None:
        return self.panel.raster_combo.currentLayer()

    def _to_raster(self) -> QgsCoordinateTransform:
        return QgsCoordinateTransform(self.canvas.mapSettings().destinationCrs(), self.raster.crs(),
                                      QgsProject.instance())

    def _click(self, point: QgsPointXY, add: bool) -> None:
        if self._ensure_server():
            try:
                point = self._to_raster().transform(point)
            except QgsCsException:
                self._message("This point has no place in the raster's CRS: it is outside the raster.",
                              Qgis.MessageLevel.Warning)
                return
            self._send({"op": "click", "x": point.x(), "y": point.y(), "add": add})

    def _drag(self, rectangle: QgsRectangle, add: bool) -> None:
        self.add_region(QgsGeometry.fromRect(rectangle), add, self.canvas.mapSettings().destinationCrs())

    def add_region(self, geometry: QgsGeometry, add: bool, crs) -> None:
        """Every pixel of ``geometry`` (in ``crs``) as references (added to the others with ``add``)."""
        if self._ensure_server():
            geometry = QgsGeometry(geometry)
            try:
                geometry.transform(QgsCoordinateTransform(crs, self.raster.crs(), QgsProject.instance()))
            except QgsCsException:
                self._message("This area has no place in the raster's CRS: it is outside the raster.",
                              Qgis.MessageLevel.Warning)
                return
            self._send({"op": "region", "wkt": geometry.asWkt(), "add": add})

    def _add_selection(self) -> None:
        layer = self.iface.activeLayer()
        if not isinstance(layer, QgsVectorLayer) or not layer.selectedFeatureCount():
            self._message("Select polygons in the active vector layer first.", Qgis.MessageLevel.Info)
            return
        geometry = QgsGeometry.unaryUnion([feature.geometry() for feature in layer.selectedFeatures()])
        self.add_region(geometry, False, layer.crs())

    def clear(self) -> None:
        if self.server is not None:
            self._send({"op": "clear"})

    def _aggregation_changed(self, *_):
        if self.server is not None:
            self._send({"op": "aggregation", "aggregation": self.panel.aggregation_combo.currentData()})

    def _ask_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self.panel, "Export the similarity mask", "", "GeoPackage (*.gpkg)")
        if path:
            self.export_mask(path if path.lower().endswith(".gpkg") else path + ".gpkg")

    def export_mask(self, path: str) -> None:
        if self.server is None or not self.last_reply.get("map"):
            self._message("Click on the map first: there is no similarity map to export.", Qgis.MessageLevel.Info)
            return
        self._send({"op": "mask", "threshold": self.panel.threshold, "output": path})

    def _ensure_server(self) -> bool:
        """Start the worker for the chosen raster if none runs; False (with a message) when it cannot."""
        if self.raster is None:
            self._message("Choose a feature raster in the explorer's panel (add one to the project first).",
                          Qgis.MessageLevel.Warning)
            return False
        if self.server is not None:
            return True
        self.server = ExplorerServer(self.raster.source(), self)
        self.server.ready.connect(self._ready)
        self.server.replied.connect(self._apply)
        self.server.failed.connect(self._failed)
        try:
            self.server.start()
        except EnvironmentProblem as exc:
            self._stop_server()
            self._message(str(exc), Qgis.MessageLevel.Critical)
            return False
        self._status(f"Loading the features of {self.raster.name()}\u2026")
        aggregation = self.panel.aggregation_combo.currentData()
        if aggregation != "mean":  # the worker starts with mean
            self._send({"op": "aggregation", "aggregation": aggregation})
        return True

    def _send(self, request: dict) -> None:
        self.server.send(request)
        if self.server.is_ready:
            self._status("Writing the mask\u2026" if request["op"] == "mask" else "Computing\u2026")

    # -- replies ------------------------------------------------------------------------------------------------
    def _ready(self, reply: dict) -> None:
        source = " from IAMAP's cache" if reply.get("cached") else ""
        self._status(f"Features loaded{source} in {reply['seconds']:.1f} s ({reply['width']} x {reply['height']} "
                     f"pixels, {reply['bands']} bands).")

    def _failed(self, message: str) -> None:
        self._stop_server()
        self._message(message, Qgis.MessageLevel.Critical)
        self._status(message)

    def _apply(self, reply: dict) -> None:
        if not reply.get("ok"):
            self._message(reply.get("message", "The similarity worker refused the request."),
                          Qgis.MessageLevel.Warning if reply.get("reason") in ("outside", "nodata", "parameter")
                          else Qgis.MessageLevel.Critical)
        elif reply.get("map"):
            self.last_reply = reply
            self._show_map(reply)
            if "reference_points" in reply and self.raster is not None:
                self.markers.show(reply["reference_points"], self.raster.crs())
            self._status(f"{reply['references']} reference(s), {reply['aggregation']}: similarity "
                         f"{reply['minimum']:.2f} to {reply['maximum']:.2f}; answered in {reply['latency']:.2f} s"
                         + (" (a coarse preview; the full map follows)." if reply.get("preview") else "."))
        elif reply.get("op") == "mask":
            layer = QgsVectorLayer(reply["output"], "Similarity mask", "ogr")
            QgsProject.instance().addMapLayer(layer)
            self._message(f"{reply['polygons']} polygon(s) written to {reply['output']}.", Qgis.MessageLevel.Success)
            self._status(f"Mask at {self.panel.threshold:.2f}: {reply['polygons']} polygon(s) in {reply['output']}.")
        elif reply.get("op") == "clear":
            self.last_reply = {}
            self._remove_layer()
            self.markers.clear()
            self._status("References cleared.")
        self.updated.emit(reply)

    def _show_map(self, reply: dict) -> None:
        self._style(reply["map"], reply)
        if not self._layer_alive():
            self.layer = QgsRasterLayer(reply["map"], LAYER_NAME, "gdal")
            self.panel.raster_combo.setExceptedLayerList([self.layer])  # not a feature raster to explore
            QgsProject.instance().addMapLayer(self.layer)
        else:
            self.layer.setDataSource(reply["map"], LAYER_NAME, "gdal", QgsDataProvider.ProviderOptions(), True)
        self.layer.triggerRepaint()

    def _style(self, path: str, reply: dict) -> None:
        """The map stretched over its range; with a threshold, only the pixels at or above it (the mask), from it
        to 1."""
        threshold = self.panel.threshold
        if threshold <= -1:
            style_continuous(path, reply["minimum"], max(reply["maximum"], reply["minimum"] + 1e-6), "Viridis")
        else:
            style_continuous(path, threshold, 1.0, "Magma", clip=True)

    def _layer_alive(self) -> bool:
        """Whether the similarity layer is still in the project (the user may have removed it)."""
        return self.layer is not None and not sip.isdeleted(self.layer) and self.layer.isValid()

    def _remove_layer(self) -> None:
        layer, self.layer = self.layer, None  # first: removing it emits signals that may lead back here
        if layer is not None and not sip.isdeleted(layer):
            QgsProject.instance().removeMapLayer(layer.id())

    def _restyle(self, *_):
        if self._layer_alive() and self.last_reply.get("map"):
            self._style(self.layer.source(), self.last_reply)
            self.layer.loadDefaultStyle()
            self.layer.triggerRepaint()

    def _status(self, text: str) -> None:
        self.panel.status_label.setText(text)

    def _message(self, text: str, level) -> None:
        self.iface.messageBar().pushMessage("IAMAP similarity explorer", text, level, 8)
