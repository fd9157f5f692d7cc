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
