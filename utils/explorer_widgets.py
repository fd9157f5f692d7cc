"""The similarity explorer's map tool (clicks and box drags on the canvas), the markers of its references and its
dock panel (raster, aggregation, threshold, clear, export); :class:`utils.similarity_explorer.SimilarityExplorer`
connects them.
"""

from __future__ import annotations

from qgis.core import QgsCoordinateTransform, QgsCsException, QgsGeometry, QgsPointXY, QgsProject, QgsRectangle
from qgis.gui import QgsMapLayerComboBox, QgsMapTool, QgsRubberBand
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtGui import QColor
from qgis.PyQt.QtWidgets import (
    QComboBox,
    QDockWidget,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from . import qgis_api

#: Screen pixels the mouse must move, button held, for a box of references rather than a click.
DRAG_PIXELS = 5
#: The threshold slider's steps per unit of similarity.
SLIDER_SCALE = 100


class ReferenceMarkers:
    """A circle on the map at each reference pixel (its centre), drawn over the layers until the references are
    cleared: what the similarity is measured to."""

    def __init__(self, canvas):
        self.canvas = canvas
        self.band = QgsRubberBand(canvas, qgis_api.POINT_GEOMETRY)
        self.band.setIcon(QgsRubberBand.IconType.ICON_CIRCLE)
        self.band.setIconSize(9)
        self.band.setWidth(2)
        self.band.setColor(QColor(255, 0, 255))
        self.band.setFillColor(QColor(255, 255, 255, 160))

    def show(self, points: list, crs) -> None:
        """Mark ``points`` ([x, y] in ``crs``) instead of the previous ones."""
        self.clear()
        to_canvas = QgsCoordinateTransform(crs, self.canvas.mapSettings().destinationCrs(), QgsProject.instance())
        for index, (x, y) in enumerate(points):
            try:
                self.band.addPoint(to_canvas.transform(QgsPointXY(x, y)), index == len(points) - 1)
            except QgsCsException:  # a reference the canvas's CRS cannot show
                continue

    def points(self) -> list[QgsPointXY]:
        """The marked points, in the canvas's CRS."""
        return [self.band.getPoint(0, i) for i in range(self.band.numberOfVertices())]

    def clear(self) -> None:
        self.band.reset(qgis_api.POINT_GEOMETRY)


class ExplorerMapTool(QgsMapTool):
    """A click: one reference (Shift: one more); a drag: a box whose pixels are all references (Shift: added)."""

    clicked = pyqtSignal(QgsPointXY, bool)
    dragged = pyqtSignal(QgsRectangle, bool)

    def __init__(self, canvas):
        super().__init__(canvas)
        self.start = None
        self.band = QgsRubberBand(canvas, qgis_api.POLYGON_GEOMETRY)
        self.band.setColor(QColor(255, 80, 0, 60))
        self.band.setStrokeColor(QColor(255, 80, 0))
        self.setCursor(Qt.CursorShape.CrossCursor)

    def canvasPressEvent(self, event):  # noqa: N802 (Qt's names)
        if event.button() == Qt.MouseButton.LeftButton:
            self.start = event.pos()

    def canvasMoveEvent(self, event):  # noqa: N802
        if self.start is not None and self._dragging(event):
            self.band.setToGeometry(QgsGeometry.fromRect(self._rectangle(event)), None)

    def canvasReleaseEvent(self, event):  # noqa: N802
        if self.start is None or event.button() != Qt.MouseButton.LeftButton:
            return
        add = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        if self._dragging(event):
            self.dragged.emit(self._rectangle(event), add)
        else:
            self.clicked.emit(self.toMapCoordinates(event.pos()), add)
        self.start = None
        self.band.reset(qgis_api.POLYGON_GEOMETRY)

    def deactivate(self):
        self.band.reset(qgis_api.POLYGON_GEOMETRY)
        super().deactivate()

    def _dragging(self, event) -> bool:
        return (event.pos() - self.start).manhattanLength() >= DRAG_PIXELS

    def _rectangle(self, event) -> QgsRectangle:
        return QgsRectangle(self.toMapCoordinates(self.start), self.toMapCoordinates(event.pos()))


class ExplorerPanel(QDockWidget):
    """The explorer's dock: the feature raster, aggregation, threshold, clear and export; ``closed`` when shut."""

    closed = pyqtSignal()

    def __init__(self, parent=None):
        super().__init__("IAMAP similarity explorer", parent)
        self.setObjectName("IamapSimilarityExplorer")
        body = QWidget()
        form = QFormLayout()
        self.raster_combo = QgsMapLayerComboBox()
        self.raster_combo.setFilters(qgis_api.RASTER_LAYER_FILTER)
        self.raster_combo.setToolTip("The feature raster: the encoder's output or any multi-band raster.")
        self.aggregation_combo = QComboBox()
        self.aggregation_combo.addItem("mean (similar to their average)", "mean")
        self.aggregation_combo.addItem("max (similar to the nearest reference)", "max")
        self.threshold_slider = QSlider(Qt.Orientation.Horizontal)
        self.threshold_slider.setRange(-SLIDER_SCALE, SLIDER_SCALE)
        self.threshold_slider.setValue(-SLIDER_SCALE)
        self.threshold_label = QLabel()
        threshold_row = QHBoxLayout()
        threshold_row.addWidget(self.threshold_slider)
        threshold_row.addWidget(self.threshold_label)
        form.addRow("Feature raster", self.raster_combo)
        form.addRow("References", self.aggregation_combo)
        form.addRow("Threshold", threshold_row)
        self.clear_button = QPushButton("Clear references")
        self.selection_button = QPushButton("Add selected polygons")
        self.selection_button.setToolTip("Every pixel in the selected features of the active vector layer becomes "
                                         "a reference.")
        self.export_button = QPushButton("Export mask\u2026")
        self.export_button.setToolTip("The pixels at or above the threshold as polygons in a GeoPackage, with the "
                                      "threshold and references recorded: a TEMPLATE for ml or similarity.")
        buttons = QHBoxLayout()
        for button in (self.clear_button, self.selection_button, self.export_button):
            buttons.addWidget(button)
        self.help_label = QLabel("Click: reference pixel \u00b7 Shift+click: add one \u00b7 drag: box of references")
        self.status_label = QLabel("Click on the map.")
        self.status_label.setWordWrap(True)
        layout = QVBoxLayout(body)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.help_label)
        layout.addWidget(self.status_label)
        layout.addStretch(1)
        self.setWidget(body)
        self.threshold_slider.valueChanged.connect(self._show_threshold)
        self._show_threshold()

    @property
    def threshold(self) -> float:
        return self.threshold_slider.value() / SLIDER_SCALE

    def _show_threshold(self, *_):
        self.threshold_label.setText("off" if self.threshold <= -1 else f"{self.threshold:.2f}")

    def closeEvent(self, event):  # noqa: N802
        super().closeEvent(event)
        self.closed.emit()
