"""``iamap:reduction`` and ``iamap:cluster`` through the real QGIS: qgis_process, processing.run, styles,
saved models, errors, and a .model3 chain reduction -> cluster."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import rasterio
from sklearn.metrics import adjusted_rand_score

from ..fixtures import regions_raster
from .conftest import AlgorithmFailed

pytestmark = pytest.mark.qgis


def renderer_of(qgis, path) -> str:
    """The renderer QGIS gives the layer when it loads it (the .qml saved beside the file)."""
    check = qgis.pyqgis(f"""
        from qgis.core import QgsRasterLayer
        layer = QgsRasterLayer({str(path)!r}, "out")  # kept: the renderer belongs to it
        renderer = layer.renderer()
        classes = [(int(c.value), c.label) for c in renderer.classes()] if renderer.type() == "paletted" else []
        print("RENDERER", renderer.type(), classes)
        """)
    return check.stdout.split("RENDERER ")[1].strip() if "RENDERER" in check.stdout else check.stdout + check.stderr


def test_qgis_process_clusters_known_regions_back_with_a_paletted_style(qgis, tmp_path):
    raster, truth = regions_raster(tmp_path / "f.tif", 120, 80, regions=4, nodata_corner=10)
    out = tmp_path / "clusters.tif"
    result = qgis.run("iamap:cluster", {"INPUT": raster, "METHOD": "KMeans", "N_CLUSTERS": 4, "OUTPUT": out})
    with rasterio.open(out) as src:
        labels = src.read(1)
        assert src.nodata == -32768 and src.dtypes[0] == "int16"
    valid = truth >= 0
    ari = adjusted_rand_score(truth[valid], labels[valid])
    print(f"KMeans through qgis_process: adjusted Rand index {ari:.4f}")
    assert ari > 0.95 and np.all(labels[~valid] == -32768)
    results = result["results"]
    assert results["CLUSTERS"] == 4 and results["SILHOUETTE"] > 0.8 and results["INERTIA"] > 0
    assert sum(json.loads(results["CLUSTER_SIZES"]).values()) == valid.sum()
    assert renderer_of(qgis, out) == ("paletted [(0, 'cluster 0'), (1, 'cluster 1'), (2, 'cluster 2'), "
                                      "(3, 'cluster 3')]")


def test_qgis_process_umap_on_the_scene_opens_as_rgb(qgis, assets, tmp_path):
    out = tmp_path / "umap.tif"
    qgis.run("iamap:reduction", {"INPUT": assets / "test.tif", "METHOD": "UMAP", "SAMPLE_SIZE": 2000,
                                 "EXTENT": "232000,236000,476000,478000 [EPSG:32633]", "OUTPUT": out})
    with rasterio.open(out) as src, rasterio.open(assets / "test.tif") as scene:
        assert src.count == 3 and src.crs == scene.crs and np.isfinite(src.read()).all()
        assert src.transform.a == scene.transform.a and src.shape == (201, 401)
        assert src.bounds.left == pytest.approx(232000, abs=10) and src.bounds.top == pytest.approx(478000, abs=10)
    assert renderer_of(qgis, out).startswith("multibandcolor")


def test_processing_run_hdbscan_saves_a_model_that_reapplies_identically(qgis, assets, tmp_path):
    script = f"""
        import json
        first = processing.run("iamap:cluster", {{"INPUT": {str(assets / 'test.tif')!r}, "METHOD": "HDBSCAN",
                               "SAMPLE_SIZE": 3000, "OUTPUT": {str(tmp_path / 'a.tif')!r},
                               "SAVE_MODEL": {str(tmp_path / 'hdbscan.iamapmodel')!r}}})
        again = processing.run("iamap:cluster", {{"INPUT": {str(assets / 'test.tif')!r},
                               "LOAD_MODEL": first["SAVE_MODEL"], "OUTPUT": {str(tmp_path / 'b.tif')!r}}})
        print("RESULTS", json.dumps({{"first": first, "again": again}}))
        """
    result = qgis.pyqgis(script)
    assert "RESULTS" in result.stdout, result.stdout[-3000:] + result.stderr[-3000:]
    outputs = json.loads(result.stdout.split("RESULTS ")[1].splitlines()[0])
    assert outputs["first"]["SAVE_MODEL"] == str(tmp_path / "hdbscan.iamapmodel")
    assert outputs["first"]["CLUSTERS"] == outputs["again"]["CLUSTERS"] >= 2
    with rasterio.open(tmp_path / "a.tif") as a, rasterio.open(tmp_path / "b.tif") as b:
        np.testing.assert_array_equal(a.read(1), b.read(1))


def test_bad_sk_param_and_a_model_with_other_bands_fail_with_clear_messages(qgis, tmp_path):
    raster, _ = regions_raster(tmp_path / "f.tif", 40, 40)
    with pytest.raises(AlgorithmFailed) as info:
        qgis.run("iamap:cluster", {"INPUT": raster, "SK_PARAM": '{"n_cluster": 3}', "OUTPUT": tmp_path / "c.tif"})
    text = info.value.result.stdout + info.value.result.stderr
    assert "SK_PARAM: KMeans has no parameter 'n_cluster'. Valid parameters of KMeans:" in text
    assert "n_clusters" in text and "Traceback" not in text
    qgis.run("iamap:reduction", {"INPUT": raster, "OUTPUT": tmp_path / "r.tif",
                                 "SAVE_MODEL": tmp_path / "m.iamapmodel"})
    with pytest.raises(AlgorithmFailed) as info:
        qgis.run("iamap:reduction", {"INPUT": raster, "BANDS": [1, 2, 3], "LOAD_MODEL": tmp_path / "m.iamapmodel",
                                     "OUTPUT": tmp_path / "r2.tif"})
    assert ("BANDS: the model in m.iamapmodel was fitted on 8 band(s) (bands 1, 2, 3, 4, 5, 6, 7, 8 of f.tif); the "
            "selected input has 3") in info.value.result.stdout + info.value.result.stderr
    assert not (tmp_path / "r2.tif").exists() and not (tmp_path / "c.tif").exists()


def test_help_lists_every_parameter_and_warns_about_model_files(qgis):
    for algorithm, size in (("iamap:reduction", "N_COMPONENTS"), ("iamap:cluster", "N_CLUSTERS")):
        text = qgis.process("help", algorithm).stdout
        for parameter in ("INPUT", "BANDS", "EXTENT", "METHOD", size, "SK_PARAM", "SAMPLE_SIZE", "RANDOM_SEED",
                          "LOAD_MODEL", "TRUST_MODEL", "SAVE_MODEL", "OUTPUT"):
            assert f"<b>{parameter}</b>:" in text, (algorithm, parameter)
        assert "since loading one runs code from it" in text and "nearest sampled pixels" in text
        assert "it may run code from the file" in text


class MarkerPickle:
    """Unpickling it creates a file: stands for any code a pickle runs on load."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def test_a_crafted_pickle_given_to_load_model_fails_without_running(qgis, tmp_path):
    raster, _ = regions_raster(tmp_path / "f.tif", 24, 24)
    marker = tmp_path / "marker"
    crafted = tmp_path / "kmeans.joblib"
    crafted.write_bytes(pickle.dumps(MarkerPickle(marker)))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(AlgorithmFailed) as info:
        qgis.run("iamap:cluster", {"INPUT": raster, "LOAD_MODEL": crafted, "OUTPUT": tmp_path / "c.tif"})
    text = info.value.result.stdout + info.value.result.stderr
    assert "LOAD_MODEL: kmeans.joblib is not an IAMAP model file (.iamapmodel)" in text
    assert "leave LOAD_MODEL empty" in text and "Traceback" not in text
    assert not marker.exists()
    assert {name: (tmp_path / name).read_bytes() for name in before} == before  # inputs byte-identical
    assert not (tmp_path / "c.tif").exists() and not (tmp_path / "c.partial.tif").exists()


def test_model3_chain_pca_then_kmeans(qgis, tmp_path):
    raster, truth = regions_raster(tmp_path / "f.tif", 90, 60, bands=16, regions=3, nodata_corner=6)
    model_file = tmp_path / "reduce_then_cluster.model3"
    outputs = qgis.run_model3(model_file, "features", [
        ("reduce", "iamap:reduction", {"INPUT": ("parameter", "features"), "METHOD": "PCA", "N_COMPONENTS": 4}, {}),
        ("cluster", "iamap:cluster", {"INPUT": ("child", "reduce", "OUTPUT"), "METHOD": "KMeans", "N_CLUSTERS": 3},
         {"classes": "OUTPUT"}),
    ], {"features": str(raster), "cluster:classes": str(tmp_path / "classes.tif")})
    assert outputs["cluster:classes"] == str(tmp_path / "classes.tif")
    assert "iamap:reduction" in model_file.read_text() and "iamap:cluster" in model_file.read_text()
    with rasterio.open(tmp_path / "classes.tif") as src:
        labels = src.read(1)
    valid = truth >= 0
    assert adjusted_rand_score(truth[valid], labels[valid]) > 0.95 and np.all(labels[~valid] == -32768)


def test_cancel_during_the_fit_stops_at_once_and_leaves_no_output(qgis, tmp_path):
    raster, _ = regions_raster(tmp_path / "f.tif", 100, 100)
    out = tmp_path / "tsne.tif"
    script = f"""
        import threading, time
        from qgis.core import QgsProcessingException, QgsProcessingFeedback
        feedback = QgsProcessingFeedback()
        state = {{}}
        def watch():
            while feedback.progress() < 30:  # 30 %: the sample is drawn, the t-SNE fit (tens of seconds) begins
                time.sleep(0.05)
            time.sleep(1)
            state["at"] = time.monotonic()
            feedback.cancel()
        threading.Thread(target=watch, daemon=True).start()
        try:
            processing.run("iamap:reduction", {{"INPUT": {str(raster)!r}, "METHOD": "TSNE", "SAMPLE_SIZE": 10000,
                                               "OUTPUT": {str(out)!r}}}, feedback=feedback)
            print("FINISHED")
        except QgsProcessingException as exc:
            print("CANCELLED", f"{{time.monotonic() - state['at']:.3f}}", exc)
        """
    result = qgis.pyqgis(script)
    assert "CANCELLED" in result.stdout, result.stdout[-3000:] + result.stderr[-3000:]
    assert float(result.stdout.split("CANCELLED ")[1].split()[0]) < 1.0
    assert "IAMAP reduction was cancelled" in result.stdout
    assert not out.exists() and not (tmp_path / "tsne.partial.tif").exists()


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # the input has none, on purpose
def test_clusters_of_a_raster_without_geotransform_cover_it_in_qgis(qgis, tmp_path):
    path = tmp_path / "plain.tif"
    with rasterio.open(path, "w", driver="GTiff", width=60, height=40, count=3, dtype="float32") as dst:
        dst.write(np.random.default_rng(0).normal(size=(3, 40, 60)).astype("float32"))
    out = tmp_path / "clusters.tif"
    qgis.run("iamap:cluster", {"INPUT": path, "N_CLUSTERS": 3, "OUTPUT": out})
    check = qgis.pyqgis(f"""
        from qgis.core import QgsRasterLayer
        for path in ({str(path)!r}, {str(out)!r}):
            e = QgsRasterLayer(path, "r").extent()
            print("EXTENT", e.xMinimum(), e.yMinimum(), e.xMaximum(), e.yMaximum())
        """)
    extents = [line.split()[1:] for line in check.stdout.splitlines() if line.startswith("EXTENT")]
    assert extents == [["0.0", "-40.0", "60.0", "0.0"]] * 2, check.stdout[-3000:] + check.stderr[-3000:]
