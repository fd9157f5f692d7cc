"""Scripts and models written for IAMAP 1.0.2 through the real QGIS: its own test parameters run with the model
and output file they name, each 1.0.2 name warned once, unknown names warned, what cannot be honoured refused."""

from __future__ import annotations

import json
import textwrap

import joblib
import numpy as np
import pytest
import rasterio

from ..fixtures import all_pixels, pickle_like_1_0_2, random_raster, regions_raster

pytestmark = pytest.mark.qgis

#: tests/test_encoder.py of IAMAP 1.0.2: the parameters its encoder test passes (INPUT and OUTPUT set below).
ENCODER_1_0_2 = {"BACKBONE_CHOICE": "", "BACKBONE_OPT": 0, "BANDS": None, "BATCH_SIZE": 1, "CKPT": "", "CRS": None,
                 "CUDA": True, "CUDA_ID": 0, "EXTENT": None, "FEAT_OPTION": True, "MERGE_METHOD": 0, "PAUSES": 0,
                 "QUANT": False, "REMOVE_TEMP_FILES": True, "RESOLUTION": None, "SIZE": 224, "STRIDE": 224,
                 "TEMP_FILES_CLEANUP_FREQ": 1000, "WORKERS": 0, "JSON_PARAM": "NULL", "OUT_DTYPE": 0}

RUNS = """
    import json
    from qgis.core import QgsProcessingFeedback
    class Log(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.lines = []
        def pushWarning(self, text):
            self.lines.append("WARNING " + text)
        def pushInfo(self, text):
            self.lines.append(text)
    for algorithm, params in RUNS:
        log = Log()
        try:
            result = {{"outputs": {{k: str(v) for k, v in processing.run(algorithm, params, feedback=log).items()}}}}
        except Exception as exc:
            result = {{"error": str(exc)}}
        print("RUN " + json.dumps(dict(result, log=log.lines)))
"""


def run_all(qgis, runs: list) -> list:
    """Each ``(algorithm, params)`` through ``processing.run`` in one QGIS; returns outputs or error, and the log."""
    done = qgis.pyqgis(f"RUNS = {runs!r}\n" + textwrap.dedent(RUNS.format()))
    results = [json.loads(line[4:]) for line in done.stdout.splitlines() if line.startswith("RUN ")]
    assert len(results) == len(runs), done.stdout[-3000:] + done.stderr[-3000:]
    return results


def warnings_starting(log: list, start: str) -> int:
    return sum(line.startswith("WARNING " + start) for line in log)


def test_1_0_2_test_parameters_run_with_the_model_and_file_they_name(qgis, tmp_path):
    raster = random_raster(tmp_path / "test.tif", 224, 224)  # 1.0.2's test raster is assets/test.tif
    folder = tmp_path / "iamap_test"
    folder.mkdir()
    features = regions_raster(tmp_path / "features.tif", 64, 64, bands=6, regions=3)[0]
    reductions, clusters = tmp_path / "reduction", tmp_path / "cluster"
    reductions.mkdir(), clusters.mkdir()
    (encoder, reduction, cluster) = run_all(qgis, [
        # random weights: no network here (1.0.2 always downloaded them)
        ("iamap:encoder", {**ENCODER_1_0_2, "INPUT": str(raster), "OUTPUT": str(folder), "PRETRAINED": False,
                           "SPELLING_MISTAKE": 1}),
        # tests/test_common.py of 1.0.2: INPUT and an OUTPUT folder only
        ("iamap:reduction", {"INPUT": str(features), "OUTPUT": str(reductions)}),
        ("iamap:cluster", {"INPUT": str(features), "OUTPUT": str(clusters)}),
    ])
    out = folder / "test-merged.tif"
    assert encoder["outputs"] == {"OUTPUT": str(out)}, encoder
    record = json.loads((folder / "test-merged.iamap.json").read_text())
    assert "vit_base_patch16_224.dino" in json.dumps(record)  # what 1.0.2's BACKBONE_OPT=0 ran
    assert any(line.startswith("Model vit_base_patch16_224.dino") for line in encoder["log"]), encoder["log"]
    with rasterio.open(out) as src:
        assert src.count == 768 and src.shape == (14, 14)  # ViT-B/16: 768 features per 16 x 16 px cell
    for alias, new in (("BACKBONE_OPT=0", "BACKBONE"), ("CUDA=True", "DEVICE"), ("BACKBONE_CHOICE", "BACKBONE_NAME"),
                       ("CRS is", "TARGET_CRS"), ("RESOLUTION is", "TARGET_RESOLUTION"), ("QUANT (", "QUANT"),
                       ("PAUSES (", "PAUSES"), ("WORKERS (", "WORKERS"), ("OUT_DTYPE (", "OUT_DTYPE")):
        assert warnings_starting(encoder["log"], alias) == 1, (alias, encoder["log"])
        assert any(new in line for line in encoder["log"] if line.startswith("WARNING " + alias))
    assert warnings_starting(encoder["log"], "MERGE_METHOD=0 read in IAMAP 1.0.2's order as 'first'") == 1
    assert warnings_starting(encoder["log"], "SPELLING_MISTAKE is not a parameter of iamap:encoder") == 1

    assert reduction["outputs"]["OUTPUT"] == str(reductions / "proj.tif"), reduction
    with rasterio.open(reductions / "proj.tif") as src:
        assert src.count == 3  # 1.0.2's MAIN_PARAM default
    assert (reductions / "pca.iamapmodel").is_file()  # 1.0.2 saved pca.pkl there by default
    assert cluster["outputs"]["OUTPUT"] == str(clusters / "cluster.tif"), cluster
    with rasterio.open(clusters / "cluster.tif") as src:
        assert len(set(np.unique(src.read(1))) - {src.nodata}) == 3  # 1.0.2's default: 3 clusters (today 8)
    assert warnings_starting(cluster["log"], "This call uses IAMAP 1.0.2's conventions") == 1


def test_what_cannot_be_honoured_is_refused_naming_the_parameter(qgis, tmp_path):
    raster = random_raster(tmp_path / "scene.tif", 64, 64)
    features = regions_raster(tmp_path / "features.tif", 32, 32, bands=4)[0]
    pkl = tmp_path / "kmeans.pkl"
    from sklearn.cluster import KMeans

    joblib.dump(KMeans(n_clusters=2, n_init=1).fit(np.random.default_rng(0).normal(size=(50, 4))), pkl)
    quant, merge, pickle = run_all(qgis, [
        ("iamap:encoder", {"INPUT": str(raster), "QUANT": True, "OUTPUT": str(tmp_path / "a.tif")}),
        ("iamap:encoder", {"INPUT": str(raster), "CUDA": False, "MERGE_METHOD": 4, "OUTPUT": str(tmp_path / "b.tif")}),
        ("iamap:cluster", {"INPUT": str(features), "LOAD": str(pkl), "OUTPUT": str(tmp_path / "c.tif")}),
    ])
    assert "QUANT: IAMAP 1.0.2's QUANT=True has no equivalent here and would change the result" in quant["error"]
    assert "MERGE_METHOD: 1.0.2's merge method 'sum'" in merge["error"]
    assert "LOAD_MODEL: kmeans.pkl is not an IAMAP model file" in pickle["error"], pickle
    assert "Fit the model again (leave LOAD_MODEL empty) and save it with SAVE_MODEL" in pickle["error"]
    assert not list(tmp_path.glob("[abc].tif"))


def test_a_1_0_2_pkl_with_trust_model_clusters_as_1_0_2_did(qgis, tmp_path):
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import StandardScaler

    fit = regions_raster(tmp_path / "fit.tif", 32, 24, bands=4, regions=3)[0]
    pkl = pickle_like_1_0_2(tmp_path / "kmeans.pkl", fit, KMeans(3, n_init=3, random_state=0), subset=400)
    features = regions_raster(tmp_path / "features.tif", 30, 20, bands=4, regions=3, seed=0, noise=0.2)[0]
    folder = tmp_path / "out"
    folder.mkdir()
    (run,) = run_all(qgis, [("iamap:cluster", {"INPUT": str(features), "LOAD": str(pkl), "TRUST_MODEL": True,
                                               "OUTPUT": str(folder)})])
    assert "outputs" in run and run["outputs"]["OUTPUT"] == str(folder / "cluster.tif"), run.get("error")
    pixels = all_pixels(features)
    by_hand = joblib.load(pkl).predict(StandardScaler().fit(pixels).transform(pixels))
    with rasterio.open(folder / "cluster.tif") as src:
        np.testing.assert_array_equal(src.read(1).ravel(), by_hand)
    assert warnings_starting(run["log"], f"LOAD={str(pkl)!r} is IAMAP 1.0.2's parameter") == 1, run["log"]
    assert warnings_starting(run["log"], f"TRUST_MODEL: trusted {pkl}") == 1, run["log"]
    assert any("a pickle of IAMAP 1.0.2's bare KMeans" in line for line in run["log"])


def test_a_model3_child_and_qgis_process_carry_1_0_2_names(qgis, tmp_path):
    raster = random_raster(tmp_path / "scene.tif", 224, 224)
    out = tmp_path / "features.tif"
    # a graphical model hands a child only the parameters it declares: 1.0.2's are declared, hidden
    results = qgis.run_model3(tmp_path / "legacy.model3", "raster", [
        ("encode", "iamap:encoder", {"INPUT": ("parameter", "raster"), "BACKBONE_OPT": 4, "CUDA": False,
                                     "PRETRAINED": False}, {"features": "OUTPUT"})],
        {"raster": str(raster), "encode:features": str(out)})
    assert results["encode:features"] == str(out)
    assert "vit_tiny_patch16_224.augreg_in21k" in (tmp_path / "features.iamap.json").read_text()
    done = qgis.process("run", "iamap:encoder", f"--INPUT={raster}", "--BACKBONE_OPT=4", "--PRETRAINED=false",
                        "--MERGE_METHOD=1", "--NOT_A_PARAMETER=3", f"--OUTPUT={tmp_path / 'cli.tif'}")
    text = done.stdout + done.stderr
    assert done.returncode == 0, text
    assert text.count("BACKBONE_OPT='4' is IAMAP 1.0.2's parameter: read as "
                      "BACKBONE='vit_tiny_patch16_224.augreg_in21k'") == 1
    assert "MERGE_METHOD='1' read in IAMAP 1.0.2's order as 'average'" in text
    assert "NOT_A_PARAMETER is not a parameter of iamap:encoder" in text
    help_text = qgis.process("help", "iamap:encoder").stdout
    assert "BACKBONE_OPT" not in help_text  # accepted, not advertised
