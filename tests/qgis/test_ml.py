"""``iamap:ml`` through the real QGIS: qgis_process on the real scene with points and polygons, a selection of a
memory layer loaded styled by runAndLoadResults, a saved model applied, a named error, and a .model3 chain
encoder -> ml."""

from __future__ import annotations

import colorsys
import json
import re
import zipfile

import numpy as np
import pytest
import rasterio

from ..fixtures import labelled_points, random_raster, regions_raster
from .conftest import REPO, AlgorithmFailed
from .test_encoder import TINY
from .test_loading import add_scene, loaded_layers

pytestmark = pytest.mark.qgis


def test_qgis_process_trains_on_the_real_scene_validates_reports_and_predicts(qgis, assets, tmp_path):
    out, report, model = tmp_path / "classes.tif", tmp_path / "report.html", tmp_path / "rf.iamapmodel"
    result = qgis.run("iamap:ml", {"INPUT": assets / "test.tif", "TEMPLATE": assets / "ml.shp", "GT_COL": "Type",
                                   "TEMPLATE_TEST": assets / "ml_poly.shp", "OUTPUT": out, "REPORT": report,
                                   "SAVE_MODEL": model, "OUTPUT_CONFIDENCE": tmp_path / "confidence.tif"})
    results = result["results"]
    assert results["OUTPUT"] == str(out) and results["REPORT"] == str(report) and results["SAVE_MODEL"] == str(model)
    assert json.loads(results["CLASSES"]) == {"forest": 1, "river": 2}
    # its river polygon ('river' is known), less the pixel under a training point of ml.shp
    assert results["VALIDATED_ON"].startswith(f"independent test layer ml_poly ({assets / 'ml_poly.shp'}) (1 of the "
                                              "1500 test pixel(s) are training pixels too")
    assert 0 <= results["ACCURACY"] <= 1 and results["KAPPA"] is not None and results["F1_MACRO"] is not None
    html = report.read_text()
    assert "forest" in html and "data:image/png;base64," in html
    with rasterio.open(out) as src:
        labels = src.read(1)
        assert src.dtypes[0] == "uint8" and src.nodata == 255 and set(np.unique(labels)) <= {1, 2, 255}
    assert (tmp_path / "classes.qml").exists() and (tmp_path / "confidence.qml").exists()
    qml = (tmp_path / "classes.qml").read_text()
    assert 'label="forest"' in qml and 'label="river"' in qml

    applied = qgis.run("iamap:ml", {"INPUT": assets / "test.tif", "LOAD_MODEL": model,
                                    "OUTPUT": tmp_path / "applied.tif"})["results"]
    with rasterio.open(applied["OUTPUT"]) as src:
        np.testing.assert_array_equal(src.read(1), labels)


def test_a_selection_of_a_memory_layer_trains_and_the_classes_load_named(qgis, tmp_path):
    raster, truth = regions_raster(tmp_path / "f.tif", 60, 40, regions=3, noise=0.2)
    points = labelled_points(tmp_path / "points.gpkg", raster, truth, 10, names=lambda k: ["water", "crop", "town"][k])
    model = tmp_path / "m.iamapmodel"
    layers = loaded_layers(qgis, add_scene(raster) + f"""
from qgis.core import QgsFeatureRequest, QgsProcessingFeatureSourceDefinition, QgsVectorLayer
source = QgsVectorLayer({str(points)!r}, "points", "ogr")
memory = source.materialize(QgsFeatureRequest())
QgsProject.instance().addMapLayer(memory)
memory.selectByExpression("\\"label\\" != 'town' OR $id % 2 = 0")
open({str(tmp_path / 'selected.txt')!r}, "w").write(str(memory.selectedFeatureCount()))
processing.runAndLoadResults("iamap:ml", {{
    "INPUT": scene, "TEMPLATE": QgsProcessingFeatureSourceDefinition(memory.id(), selectedFeaturesOnly=True),
    "GT_COL": "label", "CV": "stratified", "NFOLDS": 3, "OUTPUT": "TEMPORARY_OUTPUT", "SAVE_MODEL": {str(model)!r},
    "REPORT": {str(tmp_path / 'r.html')!r}}})
""")
    classes = layers["river scene RandomForestClassifier classes"]
    assert classes["type"] == "paletted"
    assert classes["classes"] == [[1, "crop"], [2, "town"], [3, "water"]]
    with zipfile.ZipFile(model) as archive:
        record = json.loads(archive.read("iamap-model.json"))
    selected = int((tmp_path / "selected.txt").read_text())
    assert 20 < selected < 30 and record["fitted_pixels"] == selected  # one pixel per selected point, no more


def test_a_missing_field_is_named_with_its_dialog_label_without_a_traceback(qgis, assets, tmp_path):
    with pytest.raises(AlgorithmFailed) as info:
        qgis.run("iamap:ml", {"INPUT": assets / "test.tif", "TEMPLATE": assets / "ml.shp", "GT_COL": "Typo",
                              "OUTPUT": tmp_path / "x.tif"})
    text = info.value.result.stdout + info.value.result.stderr
    assert "GT_COL" in text and "Typo" in text and "Traceback" not in text
    assert not (tmp_path / "x.tif").exists()


def test_model3_chain_encoder_then_ml(qgis, tmp_path):
    raster = random_raster(tmp_path / "in.tif", 224, 224, bands=3)
    with rasterio.open(raster) as src:
        left, top = src.transform * (0, 0)
    import geopandas as gpd
    from shapely.geometry import box

    boxes = [box(left + 10 * c, top - 10 * (r + 40), left + 10 * (c + 40), top - 10 * r)
             for r, c in ((0, 0), (0, 150), (150, 0), (150, 150), (90, 90))]
    gpd.GeoDataFrame({"cover": ["a", "b", "a", "b", "a"]}, geometry=boxes, crs="EPSG:32633").to_file(
        tmp_path / "train.gpkg")
    model_file = tmp_path / "encode_then_classify.model3"
    outputs = qgis.run_model3(model_file, "raster", [
        ("encode", "iamap:encoder", {"INPUT": ("parameter", "raster"), "BACKBONE_NAME": TINY["BACKBONE_NAME"],
                                     "PRETRAINED": False, "SIZE": 32}, {}),
        ("classify", "iamap:ml", {"INPUT": ("child", "encode", "OUTPUT"), "TEMPLATE": str(tmp_path / "train.gpkg"),
                                  "GT_COL": "cover", "CV": "none"}, {"classes": "OUTPUT", "report": "REPORT"}),
    ], {"raster": str(raster), "classify:classes": str(tmp_path / "classes.tif"),
        "classify:report": str(tmp_path / "chain.html")})
    assert outputs["classify:classes"] == str(tmp_path / "classes.tif")
    assert "iamap:encoder" in model_file.read_text() and "iamap:ml" in model_file.read_text()
    with rasterio.open(tmp_path / "classes.tif") as src:
        assert src.count == 1 and set(np.unique(src.read(1))) <= {1, 2}
    assert "not validated" in (tmp_path / "chain.html").read_text().lower()


def test_cancel_while_predicting_stops_at_once_keeps_the_saved_model_and_no_partial_raster(qgis, tmp_path):
    raster, truth = regions_raster(tmp_path / "big.tif", 1500, 1500, bands=16, regions=3)
    points = labelled_points(tmp_path / "points.gpkg", raster, truth, 20)
    out, confidence, model = tmp_path / "classes.tif", tmp_path / "confidence.tif", tmp_path / "m.iamapmodel"
    script = f"""
        import threading, time
        from qgis.core import QgsProcessingException, QgsProcessingFeedback
        feedback = QgsProcessingFeedback()
        state = {{}}
        def watch():
            while feedback.progress() < 55:  # 45 %: trained and saved; the prediction runs
                time.sleep(0.05)
            state["at"] = time.monotonic()
            feedback.cancel()
        threading.Thread(target=watch, daemon=True).start()
        try:
            processing.run("iamap:ml", {{"INPUT": {str(raster)!r}, "TEMPLATE": {str(points)!r}, "GT_COL": "label",
                                        "OUTPUT": {str(out)!r}, "OUTPUT_CONFIDENCE": {str(confidence)!r},
                                        "SAVE_MODEL": {str(model)!r}}}, feedback=feedback)
            print("FINISHED")
        except QgsProcessingException as exc:
            print("CANCELLED", f"{{time.monotonic() - state['at']:.3f}}", exc)
        """
    result = qgis.pyqgis(script)
    assert "CANCELLED" in result.stdout, result.stdout[-3000:] + result.stderr[-3000:]
    assert float(result.stdout.split("CANCELLED ")[1].split()[0]) < 1.0
    assert "IAMAP ml was cancelled" in result.stdout
    assert model.exists()  # saved before the prediction: LOAD_MODEL goes on without training again
    assert not out.exists() and not confidence.exists()
    assert not list(tmp_path.glob("*.partial.tif")) and not list(tmp_path.glob("*.tmp"))


SAMPLE = REPO / "docs" / "sample"


def qml_colours(qml) -> dict:
    """{class label: #rrggbb} of the paletted style QGIS applies."""
    from xml.etree import ElementTree

    return {e.get("label"): e.get("color").lower() for e in ElementTree.parse(qml).iter("paletteEntry")}


def report_swatches(page: str) -> dict:
    return dict((name, colour) for colour, name in re.findall(r'<span class="sw" style="background:(#[0-9a-f]{6})">'
                                                                r"</span>([^<]+)<", page))


def test_the_sample_land_cover_map_and_its_report_draw_water_blue_forest_green_cropland_orange_bare_brown(qgis,
                                                                                                        tmp_path):
    out, report = tmp_path / "landcover.tif", tmp_path / "report.html"
    qgis.run("iamap:ml", {"INPUT": SAMPLE / "sample_rgb.tif", "TEMPLATE": SAMPLE / "landcover_points.geojson",
                          "GT_COL": "landcover", "OUTPUT": out, "REPORT": report})
    colours = qml_colours(tmp_path / "landcover.qml")
    assert set(colours) == {"bare", "cropland", "forest", "water"}
    hsv = {name: colorsys.rgb_to_hsv(*(int(c[i:i + 2], 16) / 255 for i in (1, 3, 5))) for name, c in colours.items()}
    hue = {name: 360 * h for name, (h, _, _) in hsv.items()}
    assert 190 <= hue["water"] <= 250 and hsv["water"][1] > 0.5  # blue
    assert 90 <= hue["forest"] <= 160 and hsv["forest"][1] > 0.5  # green
    assert 30 <= hue["cropland"] <= 60 and hsv["cropland"][2] > 0.8  # yellow to orange, bright
    assert 15 <= hue["bare"] <= 40 and hsv["bare"][2] < 0.75  # brown: a dark orange
    assert report_swatches(report.read_text()) == colours  # the report's swatches are the map's colours
    with rasterio.open(out) as src:
        table, names = src.colormap(1), json.loads(src.tags()["CLASSES"])
    assert {names[str(code)]: "#{:02x}{:02x}{:02x}".format(*table[code][:3]) for code in (1, 2, 3, 4)} == colours


def test_a_training_layer_with_a_categorized_style_gives_the_classes_its_colours(qgis, tmp_path):
    styled = {"water": "#00ffff", "forest": "#556b2f", "cropland": "#ff00ff", "bare": "#000000"}
    out, report = tmp_path / "classes.tif", tmp_path / "report.html"
    result = qgis.pyqgis(f"""
        from qgis.core import (QgsCategorizedSymbolRenderer, QgsProject, QgsRasterLayer, QgsRendererCategory,
                               QgsSymbol, QgsVectorLayer)
        from qgis.PyQt.QtGui import QColor
        points = QgsVectorLayer({str(SAMPLE / 'landcover_points.geojson')!r}, "my land cover", "ogr")
        categories = []
        for value, colour in {styled!r}.items():
            symbol = QgsSymbol.defaultSymbol(points.geometryType())
            symbol.setColor(QColor(colour))
            categories.append(QgsRendererCategory(value, symbol, value))
        points.setRenderer(QgsCategorizedSymbolRenderer("landcover", categories))
        QgsProject.instance().addMapLayer(points)
        scene = QgsRasterLayer({str(SAMPLE / 'sample_rgb.tif')!r}, "scene")
        processing.run("iamap:ml", {{"INPUT": scene, "TEMPLATE": points, "GT_COL": "landcover",
                                    "CLASS_COLOURS": '{{"bare": "#8b4513"}}', "OUTPUT": {str(out)!r},
                                    "REPORT": {str(report)!r}}})
        print("DONE")
        """)
    assert "DONE" in result.stdout, result.stdout[-3000:] + result.stderr[-3000:]
    expected = {**styled, "bare": "#8b4513"}  # CLASS_COLOURS, where given, over the layer's style
    assert qml_colours(tmp_path / "classes.qml") == expected
    assert report_swatches(report.read_text()) == expected
