"""The similarity explorer in the real QGIS desktop (under Xvfb, throw-away profile, the project in a CRS other
than the raster's): the action opens it, two simulated clicks on the canvas give maps high in the clicked region
and low elsewhere (the first a coarse map, shown, then the full map that replaces it), the second quickly; a
click outside the raster says so; the mask export's polygons; closing the panel ends the worker."""

from __future__ import annotations

import sys

import pytest

from ..fixtures import regions_raster
from .conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))
import qgis_desktop

pytestmark = [pytest.mark.qgis, pytest.mark.slow]

#: Helpers of the test bodies (also used by scripts/screenshots_explorer.py): open the explorer on RASTER and click.
EXPLORER = """
import numpy as np
from osgeo import gdal
from qgis.core import QgsCoordinateReferenceSystem, QgsCoordinateTransform, QgsPointXY, QgsProject
from qgis.PyQt.QtCore import QPoint, Qt
from qgis.PyQt.QtTest import QTest

REPLIES = []


def open_explorer(raster_path, project_crs="EPSG:3857"):
    QgsProject.instance().setCrs(QgsCoordinateReferenceSystem(project_crs))
    layer = iface.addRasterLayer(raster_path, "features")
    canvas = iface.mapCanvas()
    canvas.setExtent(QgsCoordinateTransform(layer.crs(), canvas.mapSettings().destinationCrs(),
                                            QgsProject.instance()).transformBoundingBox(layer.extent()))
    canvas.refresh()
    wait_until(lambda: False, 1)
    plugin = plugins["iamap"]
    action = [a for a in plugin.actions if "similarity" in a.text().lower()][0]
    action.trigger()
    plugin.explorer.updated.connect(REPLIES.append)
    return layer, plugin.explorer


def screen_point(layer, x, y):
    # raster CRS -> canvas CRS -> screen pixels
    canvas = iface.mapCanvas()
    point = QgsCoordinateTransform(layer.crs(), canvas.mapSettings().destinationCrs(),
                                   QgsProject.instance()).transform(QgsPointXY(x, y))
    screen = canvas.getCoordinateTransform().transform(point)
    return QPoint(int(round(screen.x())), int(round(screen.y())))


def click_and_wait(point, modifiers=Qt.NoModifier, seconds=120):
    count = len(REPLIES)
    start = time.perf_counter()
    QTest.mouseClick(iface.mapCanvas().viewport(), Qt.LeftButton, modifiers, point)
    wait_until(lambda: len(REPLIES) > count, seconds)
    return REPLIES[-1] if len(REPLIES) > count else None, time.perf_counter() - start


def markers(explorer, layer):
    # the reference markers on the map, as [x, y] in the raster's CRS
    to_raster = QgsCoordinateTransform(iface.mapCanvas().mapSettings().destinationCrs(), layer.crs(),
                                       QgsProject.instance())
    return [[round(p.x(), 3), round(p.y(), 3)] for p in map(to_raster.transform, explorer.markers.points())]


def map_values(path):
    dataset = gdal.Open(path)  # kept while the band is read: GDAL's Python bindings crash otherwise
    return dataset.GetRasterBand(1).ReadAsArray()
"""


@pytest.fixture
def desktop(qgis, tmp_path):
    """Runs a body in the QGIS desktop with the plugin, the worker being the Python running pytest."""
    if qgis_desktop.desktop_missing():
        pytest.fail(f"QGIS desktop tests: {qgis_desktop.desktop_missing()}")
    env = {key: value for key, value in qgis.env.items() if key not in ("HOME", "QT_QPA_PLATFORM")}
    env["IAMAP_PYTHON"] = sys.executable

    def run(body: str) -> dict:
        result = qgis_desktop.run_desktop(EXPLORER + body, tmp_path / "profile", env, 400)
        assert "exception" not in result, result["exception"]
        return result

    return run


def test_two_clicks_map_the_clicked_regions_export_the_mask_and_closing_ends_the_worker(desktop, tmp_path):
    raster, labels = regions_raster(tmp_path / "features.tif", 512, 512, bands=32, nodata_corner=40)
    mask = tmp_path / "mask.gpkg"
    result = desktop(f"""
import os


def body():
    layer, explorer = open_explorer({str(raster)!r})
    RESULT["panel_visible"] = explorer.panel.isVisible()
    RESULT["tool_active"] = iface.mapCanvas().mapTool() is explorer.tool
    coarse, RESULT["coarse_seconds"] = click_and_wait(screen_point(layer, 500000 + 10 * 60.5, 4000000 - 10 * 300.5))
    RESULT["coarse"] = coarse  # the worker starts with this click: a coarse map while its store loads
    RESULT["coarse_layer"] = explorer.layer.source() if explorer.layer else None
    RESULT["coarse_status"] = explorer.panel.status_label.text()
    RESULT["coarse_map"] = map_values(coarse["map"]).tolist()
    wait_until(lambda: not REPLIES[-1].get("preview"), 120)
    first = REPLIES[-1]
    RESULT["first_seconds"] = RESULT["coarse_seconds"] + first["latency"] - coarse["latency"]
    RESULT["first"] = first
    RESULT["first_markers"] = markers(explorer, layer)
    RESULT["first_layer"] = explorer.layer.source()
    RESULT["first_map"] = map_values(first["map"]).tolist()
    second, RESULT["second_seconds"] = click_and_wait(screen_point(layer, 500000 + 10 * 300.5, 4000000 - 10 * 200.5))
    RESULT["second"] = second
    RESULT["second_markers"] = markers(explorer, layer)
    RESULT["second_map"] = map_values(second["map"]).tolist()
    RESULT["layer_source"] = explorer.layer.source()
    RESULT["layer_in_project"] = bool(QgsProject.instance().mapLayersByName("Similarity (IAMAP explorer)"))
    RESULT["renderer"] = explorer.layer.renderer().type()
    outside, _ = click_and_wait(screen_point(layer, 500000 - 10 * 200, 4000000 - 10 * 200))
    RESULT["outside"] = outside
    RESULT["bar"] = [item.text() for item in iface.messageBar().items()]
    explorer.panel.threshold_slider.setValue(90)
    count = len(REPLIES)
    explorer.export_mask({str(mask)!r})
    wait_until(lambda: len(REPLIES) > count, 60)
    RESULT["export"] = REPLIES[-1]
    masks = QgsProject.instance().mapLayersByName("Similarity mask")
    RESULT["mask_features"] = masks[0].featureCount() if masks else None
    RESULT["mask_fields"] = [f.name() for f in masks[0].fields()] if masks else []
    RESULT["mask_area"] = sum(f.geometry().area() for f in masks[0].getFeatures()) if masks else None
    RESULT["mask_record"] = [masks[0].getFeature(1)[name] for name in ("threshold", "aggregation", "references")]
    pid, workdir = explorer.server.process.processId(), explorer.server.workdir
    explorer.panel.close()
    wait_until(lambda: False, 1)
    RESULT["worker_alive"] = os.path.exists(f"/proc/{{pid}}")
    RESULT["workdir_left"] = os.path.exists(workdir)
    RESULT["server_after_close"] = explorer.server is not None
    RESULT["tool_after_close"] = iface.mapCanvas().mapTool() is explorer.tool
    RESULT["layer_after_close"] = bool(QgsProject.instance().mapLayersByName("Similarity (IAMAP explorer)"))
""")
    import numpy as np

    assert result["panel_visible"] and result["tool_active"]
    first, second = np.array(result["first_map"], float), np.array(result["second_map"], float)
    assert first.shape == labels.shape == second.shape
    assert result["first"]["ok"] and result["first"]["references"] == 1
    # the first reply: a coarse map (every second row and column), shown until the full map replaces it
    coarse = np.array(result["coarse_map"], float)
    assert result["coarse"]["preview"] is True and coarse.shape == (256, 256)
    assert result["coarse_layer"] == result["coarse"]["map"] and "the full map follows" in result["coarse_status"]
    assert result["first_layer"] == result["first"]["map"] != result["coarse"]["map"]
    np.testing.assert_allclose(coarse, first[1::2, 1::2], atol=2e-3, equal_nan=True)
    print(f"first click: coarse map {result['coarse_seconds']:.2f} s (the worker's start included)")
    # a marker at the centre of the clicked pixel (within a pixel of the click: the canvas rounds it to the screen),
    # then only at the new one (no Shift)
    for name, (x, y) in (("first", (500000 + 10 * 60.5, 4000000 - 10 * 300.5)),
                         ("second", (500000 + 10 * 300.5, 4000000 - 10 * 200.5))):
        assert result[f"{name}_markers"] == [pytest.approx(result[name]["reference_points"][0], abs=0.01)]
        assert abs(result[f"{name}_markers"][0][0] - x) <= 10 and abs(result[f"{name}_markers"][0][1] - y) <= 10
    assert np.isnan(first[labels == -1]).all()
    assert first[labels == 0].min() > 0.95 and first[labels > 0].max() < first[labels == 0].min() - 0.2
    others = (labels >= 0) & (labels != 2)
    assert result["second"]["ok"] and second[labels == 2].min() > 0.95 and second[others].max() < 0.8
    print(f"first click {result['first_seconds']:.2f} s (loading included), second {result['second_seconds']:.3f} s "
          f"(worker's round trip {result['second']['latency']:.3f} s) on 512 x 512 x 32")
    assert result["second_seconds"] < 0.5
    assert result["layer_source"] == result["second"]["map"] and result["layer_in_project"]
    assert result["renderer"] == "singlebandpseudocolor"
    assert result["outside"]["ok"] is False and result["outside"]["reason"] == "outside"
    assert any("outside the raster" in text for text in result["bar"])
    assert result["export"]["ok"] and result["export"]["output"] == str(mask)
    above = float((second >= 0.9).sum()) * 100  # 10 m pixels
    assert result["mask_features"] == result["export"]["polygons"] >= 1
    assert result["mask_area"] == pytest.approx(above) and above == pytest.approx((labels == 2).sum() * 100)
    assert {"threshold", "aggregation", "references", "reference_points", "raster"} <= set(result["mask_fields"])
    assert result["mask_record"] == [0.9, "mean", 1]
    assert not result["worker_alive"] and not result["workdir_left"] and not result["server_after_close"]
    assert not result["tool_after_close"] and not result["layer_after_close"]


def test_box_drag_shift_click_with_max_and_a_click_on_nodata(desktop, tmp_path):
    raster, labels = regions_raster(tmp_path / "features.tif", 256, 256, bands=16, nodata_corner=30)
    result = desktop(f"""
def body():
    layer, explorer = open_explorer({str(raster)!r}, "EPSG:4326")
    explorer.panel.aggregation_combo.setCurrentIndex(explorer.panel.aggregation_combo.findData("max"))
    canvas = iface.mapCanvas().viewport()
    # a box over rows 100-120, columns 70-90 (region 1), dragged with the mouse
    start, end = screen_point(layer, 500000 + 705, 4000000 - 1005), screen_point(layer, 500000 + 905, 4000000 - 1205)
    count = len(REPLIES)
    QTest.mousePress(canvas, Qt.LeftButton, Qt.NoModifier, start)
    QTest.mouseRelease(canvas, Qt.LeftButton, Qt.NoModifier, end)
    wait_until(lambda: REPLIES[-1:] and REPLIES[-1]["op"] == "region", 120)  # after the aggregation's reply
    RESULT["box"] = REPLIES[-1]
    RESULT["box_markers"] = markers(explorer, layer)
    RESULT["box_map"] = map_values(REPLIES[-1]["map"]).tolist()
    shift, _ = click_and_wait(screen_point(layer, 500000 + 10 * 220.5, 4000000 - 10 * 200.5), Qt.ShiftModifier)
    RESULT["shift"] = shift
    RESULT["shift_markers"] = markers(explorer, layer)
    RESULT["shift_map"] = map_values(shift["map"]).tolist()
    nodata, _ = click_and_wait(screen_point(layer, 500000 + 10 * 5.5, 4000000 - 10 * 5.5))
    RESULT["nodata"] = nodata
    RESULT["bar"] = [item.text() for item in iface.messageBar().items()]
    explorer.panel.clear_button.click()
    wait_until(lambda: REPLIES[-1]["op"] == "clear", 30)
    RESULT["cleared_layer"] = bool(QgsProject.instance().mapLayersByName("Similarity (IAMAP explorer)"))
    RESULT["cleared_markers"] = markers(explorer, layer)
    explorer.panel.close()
""")
    import numpy as np

    box, shift = result["box"], result["shift"]
    assert box["ok"] and box["op"] == "region" and box["aggregation"] == "max"
    assert 300 <= box["references"] <= 23 * 23  # ~20 x 20 pixels, as the canvas rounds the box to screen pixels
    box_map, shift_map = np.array(result["box_map"], float), np.array(result["shift_map"], float)
    valid = labels >= 0
    assert box_map[labels == 1].min() > 0.9 and box_map[valid & (labels != 1)].max() < 0.8
    assert shift["references"] == box["references"] + 1
    # a marker at each reference: the box's pixels, inside the box, then one more at the Shift-clicked pixel
    assert len(result["box_markers"]) == box["references"]
    assert all(500000 + 700 <= x <= 500000 + 910 and 4000000 - 1210 <= y <= 4000000 - 1000
               for x, y in result["box_markers"])
    assert result["shift_markers"][:-1] == result["box_markers"]
    assert result["shift_markers"][-1] == pytest.approx(shift["reference_points"][-1], abs=0.01)
    assert abs(result["shift_markers"][-1][0] - (500000 + 10 * 220.5)) <= 10
    assert shift_map[np.isin(labels, [1, 3])].min() > 0.9 and shift_map[np.isin(labels, [0, 2])].max() < 0.8
    assert result["nodata"]["ok"] is False and result["nodata"]["reason"] == "nodata"
    assert any("nodata" in text for text in result["bar"])
    assert not result["cleared_layer"] and result["cleared_markers"] == []  # "Clear references" clears them
