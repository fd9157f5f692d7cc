"""The graphical models shipped in models/: listed under the toolbox's Models while the plugin is loaded (and only
then), and each one run through ``qgis_process run file.model3`` on the bundled sample."""

from __future__ import annotations

import json
import subprocess
from xml.etree import ElementTree

import numpy as np
import pytest
import rasterio

from .conftest import QGIS_PYTHON, REPO

pytestmark = pytest.mark.qgis

MODELS = REPO / "models"
SAMPLE = REPO / "docs" / "sample" / "sample_rgb.tif"
POINTS = REPO / "docs" / "sample" / "landcover_points.geojson"
NAMES = {"Encode, reduce and cluster", "Encode and classify"}


def test_the_models_are_listed_under_models_while_the_plugin_is_loaded_with_the_users_folder_kept_first(qgis,
                                                                                                        tmp_path):
    user_models = tmp_path / "my-models"
    user_models.mkdir()
    script = f"""
        import json
        from qgis.core import QgsSettings
        from processing.core.ProcessingConfig import ProcessingConfig
        registry = QgsApplication.processingRegistry()
        def state():
            models = registry.providerById("model")
            iamap_models = sorted(a.name() for a in models.algorithms() if a.group() == "IAMAP")
            return {{"models": iamap_models, "setting": ProcessingConfig.getSetting("MODELS_FOLDER"),
                     "saved": QgsSettings().value("Processing/Configuration/MODELS_FOLDER")}}
        from processing.modeler.ModelerUtils import ModelerUtils
        states = {{"loaded": state(), "default": ModelerUtils.defaultModelsFolder()}}
        classify = registry.algorithmById("model:Encode and classify")
        states["children"] = {{c: classify.childAlgorithm(c).algorithm().id() for c in classify.childAlgorithms()}}
        plugin.unload()
        states["unloaded"] = state()
        ProcessingConfig.settings["MODELS_FOLDER"].value = {str(user_models)!r}
        plugin = iamap.classFactory(None)
        plugin.initProcessing()
        from iamap.utils.shipped_models import add_models_folder
        add_models_folder()  # again, as a load after a session that ended without unloading: listed once
        states["user"] = state()
        plugin.unload()
        states["user unloaded"] = state()
        print("STATES", json.dumps(states))
        """
    result = qgis.pyqgis(script)
    assert "STATES" in result.stdout, result.stdout[-3000:] + result.stderr[-3000:]
    states = json.loads(result.stdout.split("STATES ", 1)[1].splitlines()[0])
    ours = str(MODELS)
    loaded = states["loaded"]
    assert set(loaded["models"]) == NAMES
    folders = loaded["setting"].split(";")
    assert folders[-1] == ours and folders.count(ours) == 1 and len(folders) >= 2  # the user's default stays first
    assert loaded["saved"] == loaded["setting"]
    assert states["children"] == {"encode": "iamap:encoder", "classify": "iamap:ml"}  # resolved: runnable
    assert states["unloaded"]["models"] == [] and ours not in states["unloaded"]["setting"]
    assert states["unloaded"]["setting"] == ";".join(folders[:-1])
    # 3.40 stores nothing for a setting equal to its default (the user's folder, here): "saved" is then empty
    assert states["unloaded"]["saved"] == states["unloaded"]["setting"] \
        or (states["unloaded"]["saved"] is None and states["unloaded"]["setting"] == states["default"])
    assert states["user"]["setting"] == f"{user_models};{ours}" and set(states["user"]["models"]) == NAMES
    assert states["user unloaded"]["setting"] == states["user unloaded"]["saved"] == str(user_models)


def raster_summary(path) -> dict:
    with rasterio.open(path) as src:
        return {"count": src.count, "crs": src.crs, "dtype": src.dtypes[0], "bounds": src.bounds,
                "data": src.read(1, masked=True)}


def test_encode_reduce_cluster_runs_through_qgis_process_on_the_sample(qgis, tmp_path):
    outputs = {"encode:features": tmp_path / "features.tif", "reduce:reduced": tmp_path / "reduced.tif",
               "cluster:clusters": tmp_path / "clusters.tif"}
    result = qgis.run(str(MODELS / "encode_reduce_cluster.model3"), {
        "raster": SAMPLE, "pretrained": "false", "n_components": 5, "n_clusters": 4, **outputs})
    assert {name: result["results"][name] for name in outputs} == {name: str(path) for name, path in outputs.items()}
    sample = raster_summary(SAMPLE)
    features, reduced, clusters = (raster_summary(path) for path in outputs.values())
    assert features["count"] == 384 and features["dtype"] == "float32"  # the default backbone: DINOv2 ViT-S/14
    assert reduced["count"] == 5 and reduced["dtype"] == "float32"
    assert clusters["count"] == 1 and clusters["dtype"] == "int16"
    assert sorted(np.unique(clusters["data"].compressed()).tolist()) == [0, 1, 2, 3]
    for output in (features, reduced, clusters):
        assert output["crs"] == sample["crs"]
        assert output["bounds"].left == sample["bounds"].left and output["bounds"].top == sample["bounds"].top
    assert (tmp_path / "clusters.qml").exists()  # styled as the tool styles it


def test_encode_classify_runs_through_qgis_process_and_maps_the_labelled_classes(qgis, tmp_path):
    outputs = {"encode:features": tmp_path / "features.tif", "classify:class_map": tmp_path / "classes.tif",
               "classify:report": tmp_path / "report.html"}
    result = qgis.run(str(MODELS / "encode_classify.model3"), {
        "raster": SAMPLE, "pretrained": "false", "backbone": "vit_tiny_patch16_224.augreg_in21k",
        "training": POINTS, "label_field": "landcover", **outputs})
    assert {name: result["results"][name] for name in outputs} == {name: str(path) for name, path in outputs.items()}
    sample, features, classes = raster_summary(SAMPLE), raster_summary(outputs["encode:features"]), \
        raster_summary(outputs["classify:class_map"])
    assert features["count"] == 192  # ViT-Tiny: the backbone input reached the encoder
    assert classes["count"] == 1 and classes["crs"] == features["crs"] == sample["crs"]
    codes = {"bare": 1, "cropland": 2, "forest": 3, "water": 4}  # text labels get codes in alphabetical order
    assert sorted(np.unique(classes["data"].compressed()).tolist()) == sorted(codes.values())
    qml = (tmp_path / "classes.qml").read_text()
    assert all(f'label="{name}"' in qml for name in codes)
    report = outputs["classify:report"].read_text()
    assert "landcover" in report and "data:image/png;base64," in report
    # the map gives the training points their own class (even from random weights, colour survives the encoder)
    points = json.loads(POINTS.read_text())["features"]
    with rasterio.open(outputs["classify:class_map"]) as src:
        mapped = [int(v[0]) for v in src.sample([p["geometry"]["coordinates"] for p in points])]
    right = sum(m == codes[p["properties"]["landcover"]] for m, p in zip(mapped, points))
    assert right >= 0.9 * len(points), list(zip(mapped, [p["properties"]["landcover"] for p in points]))


def test_when_the_plugin_loads_before_processings_model_provider_the_provider_finds_the_folder_in_the_settings(
        qgis):
    # the desktop may load the plugin before Processing: the folder then goes to QgsSettings, which the model
    # provider reads when it loads
    script = """
        import json
        from qgis.core import QgsSettings
        from processing.core.ProcessingConfig import ProcessingConfig
        registry = QgsApplication.processingRegistry()
        plugin.unload()
        models = registry.providerById("model")
        registry.removeProvider(models)  # Processing not loaded yet: no model provider, no setting registered
        del ProcessingConfig.settings["MODELS_FOLDER"]
        plugin = iamap.classFactory(None)
        plugin.initProcessing()
        saved = QgsSettings().value("Processing/Configuration/MODELS_FOLDER")
        from processing.modeler.ModelerAlgorithmProvider import ModelerAlgorithmProvider
        models = ModelerAlgorithmProvider()
        registry.addProvider(models)  # Processing loads now: its provider registers and reads the setting
        names = sorted(a.name() for a in models.algorithms() if a.group() == "IAMAP")
        print("STATE", json.dumps({"saved": saved, "names": names}))
        """
    result = qgis.pyqgis(script)
    assert "STATE" in result.stdout, result.stdout[-3000:] + result.stderr[-3000:]
    state = json.loads(result.stdout.split("STATE ", 1)[1].splitlines()[0])
    assert state["saved"].split(";")[-1] == str(MODELS) and len(state["saved"].split(";")) >= 2
    assert set(state["names"]) == NAMES


def model_content(path) -> tuple:
    """A .model3 file as nested (tag, sorted attributes, children), less what each QGIS writes its own way: the
    file format's version (3.40 gives Version1 to a file 3.22 wrote) and the model's destination parameters,
    which QGIS derives from the children's outputs when it loads a model (3.22 names them "child:output", 3.40
    after the output's description, and 3.40 keeps them out of a model it read from a file)."""
    def kept(element) -> bool:
        derived = any(meta.get("name") == "_modelChildId" for option in element if option.get("name") == "metadata"
                      for meta in option)
        return element.get("name") != "internal_version" and not derived

    def content(element):
        return (element.tag, sorted(element.attrib.items()), [content(child) for child in element if kept(child)])
    return content(ElementTree.parse(path).getroot())


def test_the_shipped_models_are_what_make_models_makes_from_the_tools_of_today(qgis, tmp_path):
    made = subprocess.run([QGIS_PYTHON, str(REPO / "scripts" / "make_models.py"), str(tmp_path)], capture_output=True,
                          text=True, env=qgis.env, timeout=300)
    assert made.returncode == 0, made.stdout + made.stderr
    # Each QGIS writes its own keys (3.40 adds outputGroup, comments...) and 3.40 writes attributes in any order:
    # the shipped files are compared, element by element, as this QGIS writes them again (see model_content).
    resaved = tmp_path / "resaved"
    resaved.mkdir()
    rewritten = qgis.pyqgis(f"""
        from qgis.core import QgsProcessingModelAlgorithm
        for name in ("encode_reduce_cluster.model3", "encode_classify.model3"):
            model = QgsProcessingModelAlgorithm()
            assert model.fromFile({str(MODELS)!r} + "/" + name)
            assert model.toFile({str(resaved)!r} + "/" + name)
        print("RESAVED")
        """)
    assert "RESAVED" in rewritten.stdout, rewritten.stdout[-3000:] + rewritten.stderr[-3000:]
    for model in ("encode_reduce_cluster.model3", "encode_classify.model3"):
        assert model_content(tmp_path / model) == model_content(resaved / model), \
            f"models/{model} is out of date: run /usr/bin/python3 scripts/make_models.py and commit it"
