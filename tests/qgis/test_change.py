"""``iamap:change`` and the polygon outputs through the real QGIS: ``qgis_process``, a ``.model3`` chain and the
results as the desktop loads them (styled)."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import rasterio

from engine.catalog import class_colour

from ..fixtures import change_scene, iou, labelled_points, regions_raster, reprojected
from .conftest import AlgorithmFailed

pytestmark = pytest.mark.qgis


def run_change(qgis, tmp_path, first, later, name):
    result = qgis.run("iamap:change", {"INPUT": first, "LATER": later, "OUTPUT": tmp_path / f"{name}.tif",
                                       "OUTPUT_MASK": tmp_path / f"{name}_mask.tif",
                                       "OUTPUT_POLYGONS": tmp_path / f"{name}_areas.gpkg"})["results"]
    with rasterio.open(result["OUTPUT_MASK"]) as src:
        mask = src.read(1)
        pixel_area = abs(src.transform.a * src.transform.e)
    return result, mask, pixel_area, gpd.read_file(result["OUTPUT_POLYGONS"])


def test_two_dates_give_the_changed_region_and_polygons_of_the_mask_area_on_any_grid(qgis, tmp_path):
    first, second, truth = change_scene(tmp_path)
    result, mask, pixel_area, polygons = run_change(qgis, tmp_path, first, [second], "same_grid")
    assert iou(mask == 1, truth) >= 0.8
    mask_area = (mask == 1).sum() * pixel_area
    assert result["CHANGED_AREA"] == pytest.approx(mask_area)
    assert abs(polygons.area.sum() - mask_area) <= 0.01 * mask_area and len(polygons) == 1
    assert polygons.crs.to_epsg() == 32633 and polygons.tool.iloc[0] == "iamap:change"
    assert (tmp_path / "same_grid.qml").exists() and (tmp_path / "same_grid_mask.qml").exists()
    # the second date on another CRS and resolution: the same answer, on the first date's grid
    moved = reprojected(second, tmp_path / "date2_webmercator.tif", "EPSG:3857", 7.0)
    other, moved_mask, moved_area, moved_polygons = run_change(qgis, tmp_path, first, [moved], "other_grid")
    assert moved_mask.shape == mask.shape and moved_area == pixel_area
    assert iou(moved_mask == 1, truth) >= 0.8 and iou(moved_mask == 1, mask == 1) >= 0.95
    moved_mask_area = (moved_mask == 1).sum() * moved_area
    assert abs(moved_polygons.area.sum() - moved_mask_area) <= 0.01 * moved_mask_area


def test_three_dates_give_a_band_per_later_date_in_their_order_and_the_date_of_largest_change(qgis, tmp_path):
    first, second, truth = change_scene(tmp_path)
    result = qgis.run("iamap:change", {"INPUT": first, "LATER": [first, second], "THRESHOLD": 0.5,
                                       "OUTPUT": tmp_path / "c.tif", "OUTPUT_DATE": tmp_path / "d.tif"})["results"]
    with rasterio.open(result["OUTPUT"]) as src:
        assert src.count == 2 and src.descriptions == ("change to date1", "change to date2")
        change = src.read()
    with rasterio.open(result["OUTPUT_DATE"]) as src:
        date = src.read(1)
    assert np.nanmax(change[0]) < 1e-5 and (date[truth] == 2).all()
    assert result["THRESHOLD_USED"] == 0.5 and result["CHANGED_PIXELS"] == truth.sum()
    assert (tmp_path / "d.qml").exists()


def test_dates_of_different_band_counts_are_refused_with_the_dialog_label(qgis, tmp_path):
    first, _, _ = change_scene(tmp_path)
    (tmp_path / "eight").mkdir()
    _, fewer, _ = change_scene(tmp_path / "eight", bands=8)
    with pytest.raises(AlgorithmFailed) as info:
        qgis.run("iamap:change", {"INPUT": first, "LATER": [fewer], "OUTPUT": tmp_path / "c.tif"})
    text = info.value.result.stdout + info.value.result.stderr
    assert "LATER: date2.tif has 8 band(s) and INPUT date1.tif 16" in text and "Later date(s)" in text
    assert "Traceback" not in text and not (tmp_path / "c.tif").exists()


def test_an_output_over_a_later_date_is_refused_and_the_date_kept(qgis, tmp_path):
    first, second, _ = change_scene(tmp_path)
    before = second.read_bytes()
    with pytest.raises(AlgorithmFailed) as info:
        qgis.run("iamap:change", {"INPUT": first, "LATER": [second], "OUTPUT": second})
    text = info.value.result.stdout + info.value.result.stderr
    assert "OUTPUT: " in text and "is the file given as LATER #1: IAMAP never overwrites its input" in text
    assert "Traceback" not in text and second.read_bytes() == before


def test_cluster_and_ml_polygons_through_qgis_process(qgis, tmp_path):
    raster, truth = regions_raster(tmp_path / "f.tif", 64, 48, regions=4, noise=0.2)
    clusters = qgis.run("iamap:cluster", {"INPUT": raster, "N_CLUSTERS": 4, "OUTPUT": tmp_path / "clusters.tif",
                                          "OUTPUT_POLYGONS": tmp_path / "cluster_polygons.gpkg", "MIN_AREA": 200}
                        )["results"]
    polygons = gpd.read_file(clusters["OUTPUT_POLYGONS"])
    assert clusters["POLYGONS"] == len(polygons) == 4 and polygons.area.sum() == pytest.approx(64 * 48 * 100)
    assert sorted(polygons.class_name) == [f"cluster {k}" for k in range(4)]
    points = labelled_points(tmp_path / "points.gpkg", raster, truth, 10, names=lambda k: "abcd"[k])
    classes = qgis.run("iamap:ml", {"INPUT": raster, "TEMPLATE": points, "GT_COL": "label", "CV": "none",
                                    "OUTPUT": tmp_path / "classes.tif",
                                    "OUTPUT_POLYGONS": tmp_path / "class_polygons.gpkg"})["results"]
    polygons = gpd.read_file(classes["OUTPUT_POLYGONS"])
    assert set(polygons.class_name) == set("abcd") and set(polygons.source) == {"classes.tif"}
    with rasterio.open(classes["OUTPUT"]) as src:
        coded = src.read(1)
    for code in range(1, 5):
        assert polygons[polygons.class_value == code].area.sum() == pytest.approx((coded == code).sum() * 100)
    assert json.loads(polygons.parameters.iloc[0])["GT_COL"] == "label"


def test_a_model3_chain_encodes_then_writes_cluster_and_ml_polygons(qgis, tmp_path):
    sample = tmp_path / "scene.tif"
    raster, truth = regions_raster(tmp_path / "scene_features.tif", 64, 64, bands=3, regions=2, noise=0.02)
    with rasterio.open(raster) as src:
        profile, data = src.profile, src.read()
    scaled = (np.clip((data - data.min()) / (data.max() - data.min()), 0, 1) * 250 + 1).astype(np.uint8)
    with rasterio.open(sample, "w", **dict(profile, dtype="uint8", nodata=0)) as dst:
        dst.write(scaled)
    points = labelled_points(tmp_path / "points.gpkg", raster, truth, 10, names=lambda k: "wl"[k])
    encode = {"INPUT": ("parameter", "scene"), "BACKBONE_NAME": "vit_tiny_patch16_224", "PRETRAINED": False,
              "SIZE": 32, "OUTPUT": str(tmp_path / "features.tif")}
    children = [
        ("encode", "iamap:encoder", encode, {}),
        ("cluster", "iamap:cluster", {"INPUT": ("child", "encode", "OUTPUT"), "N_CLUSTERS": 2,
                                      "OUTPUT": str(tmp_path / "clusters.tif")},
         {"cluster_polygons": "OUTPUT_POLYGONS"}),
        ("classify", "iamap:ml", {"INPUT": ("child", "encode", "OUTPUT"), "TEMPLATE": str(points), "GT_COL": "label",
                                  "CV": "none", "OUTPUT": str(tmp_path / "classes.tif")},
         {"class_polygons": "OUTPUT_POLYGONS"}),
    ]
    results = qgis.run_model3(tmp_path / "chain.model3", "scene", children, {
        "scene": str(sample), "cluster:cluster_polygons": str(tmp_path / "cluster_polygons.gpkg"),
        "classify:class_polygons": str(tmp_path / "class_polygons.gpkg")})
    assert results["cluster:cluster_polygons"] == str(tmp_path / "cluster_polygons.gpkg")
    clusters = gpd.read_file(tmp_path / "cluster_polygons.gpkg")
    classes = gpd.read_file(tmp_path / "class_polygons.gpkg")
    with rasterio.open(tmp_path / "features.tif") as src:
        cell = abs(src.transform.a * src.transform.e)
        area = src.width * src.height * cell
    assert set(clusters.class_value) == {0, 1} and clusters.area.sum() == pytest.approx(area)
    assert set(classes.class_name) <= {"w", "l"} and classes.area.sum() == pytest.approx(area)


def test_polygons_load_styled_over_their_raster_in_the_desktop(qgis, tmp_path):
    raster, _ = regions_raster(tmp_path / "f.tif", 40, 40)
    first, second, _ = change_scene(tmp_path)
    script = f"""
        import json
        from qgis.core import QgsProject, QgsRasterLayer
        scene = QgsRasterLayer({str(raster)!r}, "river scene")
        QgsProject.instance().addMapLayer(scene)
        processing.runAndLoadResults("iamap:cluster", {{"INPUT": scene, "N_CLUSTERS": 4,
            "OUTPUT": "TEMPORARY_OUTPUT", "OUTPUT_POLYGONS": "TEMPORARY_OUTPUT"}})
        processing.runAndLoadResults("iamap:change", {{"INPUT": {str(first)!r}, "LATER": [{str(second)!r}],
            "OUTPUT": "TEMPORARY_OUTPUT", "OUTPUT_MASK": "TEMPORARY_OUTPUT", "OUTPUT_POLYGONS": "TEMPORARY_OUTPUT"}})
        layers = {{}}
        for position, node in enumerate(QgsProject.instance().layerTreeRoot().findLayers()):
            layer, described = node.layer(), {{"position": position, "type": node.layer().renderer().type()}}
            if described["type"] == "categorizedSymbol":
                # values as text: 3.22 reads them back from the style as text, 3.40 as numbers
                described["categories"] = [[str(c.value()), c.label(), c.symbol().color().name()]
                                           for c in layer.renderer().categories()]
                described["features"] = layer.featureCount()
                # every polygon is drawn: its class_value has a category
                described["drawn"] = sum(layer.renderer().categoryIndexForValue(f["class_value"]) >= 0
                                         for f in layer.getFeatures())
            layers[layer.name()] = described
        print("LAYERS", json.dumps(layers))
        """
    result = qgis.pyqgis(script)
    assert "LAYERS" in result.stdout, result.stdout[-3000:] + result.stderr[-3000:]
    layers = json.loads(result.stdout.split("LAYERS ", 1)[1].splitlines()[0])
    polygons = layers["river scene KMeans (4 clusters) polygons"]
    clusters = layers["river scene KMeans (4 clusters)"]
    assert polygons["type"] == "categorizedSymbol" and polygons["position"] < clusters["position"]
    assert [c[:2] for c in polygons["categories"]] == [[str(k), f"cluster {k}"] for k in range(4)]
    assert [c[2] for c in polygons["categories"]] == [class_colour(k).lower() for k in range(4)]  # the raster's
    assert polygons["features"] == polygons["drawn"] == 4
    changed = layers["date1 changed areas"]
    assert changed["type"] == "categorizedSymbol" and changed["categories"][0][:2] == ["1", "change to date2"]
    assert changed["features"] == changed["drawn"] == 1
    assert layers["date1 change to date2"]["type"] == "singlebandpseudocolor"
    mask = next(layer for name, layer in layers.items() if name.startswith("date1 changed (threshold "))
    assert mask["type"] == "paletted"
