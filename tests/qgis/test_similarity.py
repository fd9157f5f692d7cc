"""``iamap:similarity`` through the real QGIS: the shared template, a memory layer selection, the style."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from ..fixtures import UTM_ORIGIN, regions_raster
from .conftest import AlgorithmFailed

pytestmark = pytest.mark.qgis


def test_template_shapefile_on_the_scene_loads_with_a_colour_ramp(qgis, assets, tmp_path):
    out = tmp_path / "sim.tif"
    result = qgis.run("iamap:similarity", {"INPUT": assets / "test.tif", "TEMPLATE": assets / "template.shp",
                                           "OUTPUT": out, "OUTPUT_POINTS": tmp_path / "used.gpkg"})
    assert result["results"]["OUTPUT"] == str(out)
    with rasterio.open(out) as src:
        values = src.read(1)
        assert src.crs.to_epsg() == 32633 and np.isnan(src.nodata)
    assert -1.0001 <= np.nanmin(values) and np.nanmax(values) <= 1.0001
    assert (tmp_path / "sim.qml").exists()
    check = qgis.pyqgis(f"""
        from qgis.core import QgsRasterLayer
        layer = QgsRasterLayer({str(out)!r}, "sim")
        print("RENDERER", layer.renderer().type())
        """)
    assert "RENDERER singlebandpseudocolor" in check.stdout, check.stdout + check.stderr


def test_selected_points_of_a_memory_layer_in_another_crs(qgis, tmp_path):
    raster, labels = regions_raster(tmp_path / "f.tif")
    x0, y0 = UTM_ORIGIN
    out = tmp_path / "sim.tif"
    script = f"""
        from qgis.core import (QgsVectorLayer, QgsFeature, QgsGeometry, QgsPointXY, QgsCoordinateTransform,
                               QgsCoordinateReferenceSystem, QgsProject, QgsProcessingFeatureSourceDefinition)
        layer = QgsVectorLayer("Point?crs=EPSG:4326", "refs", "memory")
        to_wgs84 = QgsCoordinateTransform(QgsCoordinateReferenceSystem("EPSG:32633"),
                                          QgsCoordinateReferenceSystem("EPSG:4326"), QgsProject.instance())
        features = []
        for col, row in [(10, 100), (40, 150), (200, 100)]:  # two in region 0, one in region 3
            feature = QgsFeature()
            feature.setGeometry(QgsGeometry.fromPointXY(to_wgs84.transform(
                QgsPointXY({x0} + (col + 0.5) * 10, {y0} - (row + 0.5) * 10))))
            features.append(feature)
        layer.dataProvider().addFeatures(features)
        QgsProject.instance().addMapLayer(layer)
        layer.selectByIds([f.id() for f in layer.getFeatures()][:2])
        template = QgsProcessingFeatureSourceDefinition(layer.id(), selectedFeaturesOnly=True)
        result = processing.run("iamap:similarity", {{"INPUT": {str(raster)!r}, "TEMPLATE": template,
                                "OUTPUT": {str(out)!r}, "OUTPUT_POINTS": "TEMPORARY_OUTPUT"}})
        print("USED", QgsVectorLayer(result["OUTPUT_POINTS"]).featureCount())
        """
    result = qgis.pyqgis(script)
    assert "USED 2" in result.stdout, result.stdout[-3000:] + result.stderr[-3000:]
    with rasterio.open(out) as src:
        values = src.read(1)
    assert values[labels == 0].min() > 0.95 and values[labels == 3].max() < 0.8


def test_all_references_outside_fails_clearly(qgis, assets, tmp_path):
    raster, _ = regions_raster(tmp_path / "f.tif")
    with pytest.raises(AlgorithmFailed) as info:
        qgis.run("iamap:similarity", {"INPUT": raster, "TEMPLATE": assets / "template.shp",
                                      "OUTPUT": tmp_path / "sim.tif"})
    text = info.value.result.stdout + info.value.result.stderr
    assert "TEMPLATE: none of the" in text and "reference points lies on a valid pixel" in text
    assert "Traceback" not in text
    assert not (tmp_path / "sim.tif").exists()


def test_a_pipe_in_the_template_and_output_names_is_kept(qgis, tmp_path):
    import geopandas as gpd
    from shapely.geometry import Point

    raster, labels = regions_raster(tmp_path / "f|eatures.tif")
    x0, y0 = UTM_ORIGIN
    template = tmp_path / "pts|x.gpkg"
    gpd.GeoDataFrame({"id": [0, 1]}, geometry=[Point(x0 + 105, y0 - 1005), Point(x0 + 405, y0 - 1505)],
                     crs="EPSG:32633").to_file(template)
    out, used = tmp_path / "sim|ilarity.tif", tmp_path / "used|points.gpkg"
    result = qgis.run("iamap:similarity", {"INPUT": raster, "TEMPLATE": template, "OUTPUT": out,
                                           "OUTPUT_POINTS": used})
    assert result["results"]["OUTPUT"] == str(out) and result["results"]["OUTPUT_POINTS"] == str(used)
    assert len(gpd.read_file(used)) == 2
    with rasterio.open(out) as src:
        assert src.read(1)[labels == 0].min() > 0.95
    second = tmp_path / "second|run.tif"
    run = qgis.pyqgis(f"""
        result = processing.run("iamap:similarity", {{"INPUT": {str(raster)!r}, "TEMPLATE": {str(template)!r},
                                 "OUTPUT": {str(second)!r}}})
        print("RESULT", result["OUTPUT"])
        """)
    assert f"RESULT {second}" in run.stdout, run.stdout[-3000:] + run.stderr[-3000:]
    assert second.exists() and not any(p.name in ("f", "pts", "sim", "used", "second") for p in tmp_path.iterdir())


def test_random_samples_is_bounded_at_100000_on_the_qgis_side(qgis, tmp_path):
    raster, labels = regions_raster(tmp_path / "f.tif", 64, 48, bands=4)
    x0, y0 = UTM_ORIGIN
    polygon = tmp_path / "poly.gpkg"
    import geopandas as gpd
    from shapely.geometry import box

    gpd.GeoDataFrame({"id": [0]}, geometry=[box(x0 + 10, y0 - 400, x0 + 150, y0 - 10)], crs="EPSG:32633"
                     ).to_file(polygon)
    with pytest.raises(AlgorithmFailed) as info:
        qgis.run("iamap:similarity", {"INPUT": raster, "TEMPLATE": polygon, "RANDOM_SAMPLES": 100_001,
                                      "OUTPUT": tmp_path / "refused.tif"})
    assert "RANDOM_SAMPLES" in info.value.result.stdout + info.value.result.stderr
    assert not (tmp_path / "refused.tif").exists()
    result = qgis.run("iamap:similarity", {"INPUT": raster, "TEMPLATE": polygon, "RANDOM_SAMPLES": 100_000,
                                           "OUTPUT": tmp_path / "sim.tif", "OUTPUT_POINTS": tmp_path / "used.gpkg"})
    assert result["results"]["OUTPUT"] == str(tmp_path / "sim.tif")
    assert len(gpd.read_file(tmp_path / "used.gpkg")) == 100_000
