"""Outputs as the desktop loads them (``processing.runAndLoadResults``, the dialog's "Open output file"): styled
and named after the input and the method; and the tools as the toolbox shows and finds them."""

from __future__ import annotations

import json

import pytest

from ..fixtures import UTM_ORIGIN, regions_raster
from .test_encoder import TINY

pytestmark = pytest.mark.qgis


def loaded_layers(qgis, body: str) -> dict:
    """Run ``body`` (which loads results into the project) and return {layer name: renderer description}."""
    script = body + """
from qgis.core import QgsProject
layers = {}
root = QgsProject.instance().layerTreeRoot()
for position, node in enumerate(root.findLayers()):
    layer = node.layer()
    if layer.type() == layer.RasterLayer:
        renderer = layer.renderer()
        description = {"type": renderer.type(), "position": position}
        if renderer.type() == "paletted":
            description["classes"] = [[int(c.value), c.label] for c in renderer.classes()]
        if renderer.type() == "multibandcolor":
            description["red_max"] = renderer.redContrastEnhancement().maximumValue()
        if renderer.type() == "singlebandpseudocolor":
            description["ramp"] = [renderer.classificationMin(), renderer.classificationMax()]
    else:
        description = {"type": "vector", "position": position}
    layers[layer.name()] = description
print("LAYERS", json.dumps(layers))
"""
    result = qgis.pyqgis("import json\n" + body.split("\n", 1)[0] + "\n" + script)
    assert "LAYERS" in result.stdout, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(result.stdout.split("LAYERS ", 1)[1].splitlines()[0])


def add_scene(raster) -> str:
    return f"""
from qgis.core import QgsProject, QgsRasterLayer
scene = QgsRasterLayer({str(raster)!r}, "river scene")
QgsProject.instance().addMapLayer(scene)
"""


def test_cluster_and_reduction_results_load_styled_and_named_after_input_and_method(qgis, tmp_path):
    raster, _ = regions_raster(tmp_path / "f.tif", 40, 40)
    layers = loaded_layers(qgis, add_scene(raster) + f"""
processing.runAndLoadResults("iamap:cluster", {{"INPUT": scene, "N_CLUSTERS": 4, "OUTPUT": "TEMPORARY_OUTPUT"}})
processing.runAndLoadResults("iamap:reduction", {{"INPUT": scene, "OUTPUT": {str(tmp_path / 'pca.tif')!r}}})
""")
    clusters = layers["river scene KMeans (4 clusters)"]
    assert clusters["type"] == "paletted"
    assert clusters["classes"] == [[k, f"cluster {k}"] for k in range(4)]
    pca = layers["river scene PCA (3 components)"]
    # the saved 2-98 % stretch, not QGIS's default min/max of the raw statistics
    assert pca["type"] == "multibandcolor" and 0 < pca["red_max"] < 10


def test_similarity_loads_a_colour_ramp_with_the_reference_points_on_top(qgis, tmp_path):
    raster, _ = regions_raster(tmp_path / "f.tif", 40, 40)
    x0, y0 = UTM_ORIGIN
    layers = loaded_layers(qgis, add_scene(raster) + f"""
from qgis.core import QgsVectorLayer, QgsFeature, QgsGeometry, QgsPointXY
refs = QgsVectorLayer("Point?crs=EPSG:32633", "river points", "memory")
feature = QgsFeature()
feature.setGeometry(QgsGeometry.fromPointXY(QgsPointXY({x0} + 55, {y0} - 55)))
refs.dataProvider().addFeatures([feature])
QgsProject.instance().addMapLayer(refs)
processing.runAndLoadResults("iamap:similarity", {{"INPUT": scene, "TEMPLATE": refs, "OUTPUT": "TEMPORARY_OUTPUT",
                                                  "OUTPUT_POINTS": "TEMPORARY_OUTPUT"}})
""")
    similarity = layers["river scene similarity to river points"]
    assert similarity["type"] == "singlebandpseudocolor" and similarity["ramp"][1] <= 1.0001
    points = layers["river points (reference points used)"]
    assert points["position"] < similarity["position"]  # drawn over the raster


def test_encoder_result_loads_as_an_rgb_view_of_three_features(qgis, tmp_path):
    raster, _ = regions_raster(tmp_path / "f.tif", 64, 64, bands=3)
    params = {**TINY, "INPUT": "scene", "OUTPUT": "TEMPORARY_OUTPUT"}
    layers = loaded_layers(qgis, add_scene(raster) + f"""
params = {params!r}
params["INPUT"] = scene
processing.runAndLoadResults("iamap:encoder", params)
""")
    name = next(n for n in layers if n.startswith("river scene features ("))
    assert TINY["BACKBONE_NAME"] in name and layers[name]["type"] == "multibandcolor"


@pytest.mark.parametrize("search, algorithm", [
    ("kmeans", "iamap:cluster"), ("pca", "iamap:reduction"), ("umap", "iamap:reduction"),
    ("embedding", "iamap:encoder"), ("segmentation", "iamap:cluster"), ("dinov2", "iamap:encoder"),
    ("similarity", "iamap:similarity"), ("bug report", "iamap:diagnostics"), ("random forest", "iamap:ml"),
    ("land cover", "iamap:ml"), ("regression", "iamap:ml"),
])
def test_toolbox_search_finds_each_tool_by_what_users_type(qgis, search, algorithm):
    result = qgis.pyqgis(f"""
        from qgis.gui import QgsProcessingToolboxModel, QgsProcessingToolboxProxyModel
        from qgis.core import QgsApplication
        model = QgsProcessingToolboxProxyModel(None, QgsApplication.processingRegistry())
        model.setFilterString({search!r})
        found = []
        def walk(parent):
            for row in range(model.rowCount(parent)):
                index = model.index(row, 0, parent)
                algorithm = model.toolboxModel().algorithmForIndex(model.mapToSource(index))
                if algorithm is not None:
                    found.append(algorithm.id())
                walk(index)
        from qgis.PyQt.QtCore import QModelIndex
        walk(QModelIndex())
        print("FOUND", sorted(set(found)))
        """)
    assert "FOUND" in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]
    assert algorithm in result.stdout.split("FOUND ")[1]
