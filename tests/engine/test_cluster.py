"""The cluster engine: known regions found again, nodata and noise kept apart, models saved and re-applied,
the shared scene with HDBSCAN, and a killed worker leaving no output under the final name."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import rasterio
from sklearn.metrics import adjusted_rand_score

from engine.cluster import NODATA, NOISE, run_cluster
from engine.errors import ParameterError
from engine.events import Reporter

from ..fixtures import (
    UTM_ORIGIN,
    all_pixels,
    described,
    pickle_like_1_0_2,
    regions_raster,
    write_raster,
)

REPO = __import__("pathlib").Path(__file__).resolve().parents[2]


def cluster(tmp_path, raster, name="c.tif", **params):
    reporter = Reporter()
    outputs = run_cluster({"INPUT": str(raster), "OUTPUT": str(tmp_path / name), **params}, reporter)
    with rasterio.open(outputs["OUTPUT"]) as src:
        return src.read(1), described(src), outputs, reporter


@pytest.mark.parametrize("method", ["KMeans", "HDBSCAN"])
def test_known_regions_are_found_again_and_nodata_stays_nodata(tmp_path, method):
    raster, truth = regions_raster(tmp_path / "r.tif", 128, 96, regions=4, nodata_corner=16)
    labels, src, outputs, reporter = cluster(tmp_path, raster, METHOD=method, N_CLUSTERS=4)
    valid = truth >= 0
    ari = adjusted_rand_score(truth[valid], labels[valid])
    print(f"{method}: adjusted Rand index {ari:.4f}")
    assert ari > 0.95
    assert src.dtypes[0] == "int16" and src.nodata == NODATA
    assert np.all(labels[~valid] == NODATA) and np.all(labels[valid] >= NOISE)
    with rasterio.open(raster) as source:
        assert src.crs == source.crs and src.transform == source.transform and src.shape == source.shape
    assert outputs["CLUSTERS"] == 4 and sum(outputs["CLUSTER_SIZES"].values()) + outputs["NOISE_PIXELS"] == valid.sum()
    assert outputs["SILHOUETTE"] > 0.8 and outputs["INERTIA"] > 0
    assert (tmp_path / "c.iamap.json").exists() and not (tmp_path / "c.partial.tif").exists()
    messages = " ".join(e.get("message", "") for e in reporter.events)
    assert "4 cluster(s); pixels per cluster: 0:" in messages and "Silhouette score" in messages


def test_hdbscan_noise_is_a_label_of_its_own_apart_from_nodata(tmp_path):
    rng = np.random.default_rng(3)
    pixels = np.where(np.arange(60 * 80)[:, None] % 80 < 40, 0.0, 3.0) + rng.normal(0, 0.1, (60 * 80, 4))
    scatter = rng.choice(60 * 80, 60 * 80 // 5, replace=False)  # a fifth of the pixels strewn between the two
    pixels[scatter] = rng.uniform(-6, 9, (len(scatter), 4))
    data = pixels.T.reshape(4, 60, 80).astype(np.float32)
    data[:, :5, :5] = np.nan
    raster = write_raster(tmp_path / "o.tif", data, nodata=float("nan"))
    labels, _, outputs, _ = cluster(tmp_path, raster, METHOD="HDBSCAN")
    assert np.all(labels[:5, :5] == NODATA) and np.sum(labels == NODATA) == 25
    noise = np.flatnonzero(labels.reshape(-1) == NOISE)
    assert outputs["NOISE_PIXELS"] == len(noise) > 300 and np.isin(noise, scatter).all()
    assert outputs["CLUSTERS"] == 2


def test_saved_model_reapplied_gives_identical_labels(tmp_path):
    raster, _ = regions_raster(tmp_path / "r.tif", 96, 64, regions=3, noise=0.5, nodata_corner=8)
    first, _, _, _ = cluster(tmp_path, raster, METHOD="KMeans", N_CLUSTERS=5, SAMPLE_SIZE=1000,
                             SAVE_MODEL=str(tmp_path / "m.iamapmodel"))
    again, _, outputs, reporter = cluster(tmp_path, raster, "again.tif", LOAD_MODEL=str(tmp_path / "m.iamapmodel"),
                                          N_CLUSTERS=2, METHOD="Birch")  # ignored: the model decides
    np.testing.assert_array_equal(first, again)
    assert "Applying the saved model: KMeans (cluster) fitted on 1000 pixels" in reporter.events[0]["message"]
    record = json.loads((tmp_path / "again.iamap.json").read_text())
    assert record["model"]["method"] == "KMeans" and record["model"]["versions"]["scikit-learn"]


def test_a_1_0_2_kmeans_pkl_under_trust_model_labels_as_1_0_2_did_and_is_re_saved(tmp_path):
    import joblib
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import StandardScaler

    raster = regions_raster(tmp_path / "fit.tif", 40, 30, bands=4, regions=3)[0]
    pkl = pickle_like_1_0_2(tmp_path / "kmeans.pkl", raster, KMeans(3, n_init=3, random_state=0), subset=600)
    data, truth = regions_raster(tmp_path / "x.tif", 36, 24, bands=4, regions=3, seed=0, noise=0.2)
    with rasterio.open(data) as src:  # another raster, its values shifted and stretched: 1.0.2 rescaled each one
        other = write_raster(tmp_path / "other.tif", src.read() * 3 + 5)
    labels, src, outputs, reporter = cluster(tmp_path, other, LOAD_MODEL=str(pkl), TRUST_MODEL=True,
                                             SAVE_MODEL=str(tmp_path / "kmeans.iamapmodel"))
    pixels = all_pixels(other)
    by_hand = joblib.load(pkl).predict(StandardScaler().fit(pixels).transform(pixels)).reshape(labels.shape)
    np.testing.assert_array_equal(labels, by_hand)
    assert adjusted_rand_score(truth.ravel(), labels.ravel()) > 0.95 and outputs["METHOD"] == "KMeans"
    assert src.dtypes[0] == "int16"
    text = " ".join(e.get("message", "") for e in reporter.events)
    assert "a pickle of IAMAP 1.0.2's bare KMeans" in text and "re-saved to" in text
    resaved, _, _, again = cluster(tmp_path, other, "resaved.tif", LOAD_MODEL=str(tmp_path / "kmeans.iamapmodel"))
    np.testing.assert_array_equal(resaved, labels)  # the safe file, without TRUST_MODEL
    assert "TRUST_MODEL" not in " ".join(e.get("message", "") for e in again.events if e["type"] == "warning")


def test_same_seed_same_labels_and_transductive_methods_label_every_pixel(tmp_path):
    raster, truth = regions_raster(tmp_path / "r.tif", 64, 64, regions=3, nodata_corner=8)
    runs = [cluster(tmp_path, raster, f"a{i}.tif", METHOD="AgglomerativeClustering", N_CLUSTERS=3,
                    SAMPLE_SIZE=500, RANDOM_SEED=5, SAVE_MODEL=str(tmp_path / f"m{i}.iamapmodel")) for i in range(2)]
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    labels, _, outputs, reporter = runs[0]
    valid = truth >= 0
    assert adjusted_rand_score(truth[valid], labels[valid]) > 0.95 and np.all(labels[valid] >= 0)
    assert any("nearest sampled pixels" in e.get("message", "") for e in reporter.events)
    reapplied, _, _, _ = cluster(tmp_path, raster, "b.tif", LOAD_MODEL=str(tmp_path / "m0.iamapmodel"))
    np.testing.assert_array_equal(labels, reapplied)


def test_extent_gives_a_georeferenced_subset(tmp_path):
    raster, _ = regions_raster(tmp_path / "r.tif", 64, 64)
    x0, y0 = UTM_ORIGIN
    labels, src, _, _ = cluster(tmp_path, raster, METHOD="KMeans", N_CLUSTERS=2,
                                EXTENT=[x0 + 100, y0 - 300, x0 + 400, y0 - 100])
    assert labels.shape == (20, 30) and src.transform.c == x0 + 100 and src.transform.f == y0 - 100


def test_band_count_mismatch_and_empty_area_are_clear_errors(tmp_path):
    raster, _ = regions_raster(tmp_path / "r.tif", 32, 32)
    cluster(tmp_path, raster, METHOD="KMeans", N_CLUSTERS=2, SAVE_MODEL=str(tmp_path / "m.iamapmodel"))
    with pytest.raises(ParameterError, match=r"BANDS: the model in m.iamapmodel was fitted on 8 band\(s\)"):
        cluster(tmp_path, raster, "x.tif", LOAD_MODEL=str(tmp_path / "m.iamapmodel"), BANDS=[1, 2])
    empty = write_raster(tmp_path / "nan.tif", np.full((2, 8, 8), np.nan, np.float32), nodata=float("nan"))
    with pytest.raises(ParameterError, match="INPUT: 0 valid pixel"):
        cluster(tmp_path, empty, "y.tif")
    assert not (tmp_path / "x.tif").exists() and not (tmp_path / "y.tif").exists()


def test_hdbscan_on_the_sentinel2_scene(tmp_path, assets):
    labels, src, outputs, _ = cluster(tmp_path, assets / "test.tif", METHOD="HDBSCAN", SAMPLE_SIZE=5000)
    print(f"HDBSCAN on test.tif: {outputs['CLUSTERS']} clusters, {outputs['NOISE_PIXELS']} noise pixels, "
          f"silhouette {outputs['SILHOUETTE']}")
    assert labels.shape == (379, 968) and src.crs.to_epsg() == 32633 and src.res == (10.0, 10.0)
    assert outputs["CLUSTERS"] >= 2 and set(np.unique(labels)) <= set(range(-1, outputs["CLUSTERS"]))
    assert sum(outputs["CLUSTER_SIZES"].values()) + outputs["NOISE_PIXELS"] == 379 * 968


def test_killed_worker_leaves_no_output_under_the_final_name(tmp_path):
    raster, _ = regions_raster(tmp_path / "big.tif", 1500, 1500, bands=16)
    output = tmp_path / "c.tif"
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"INPUT": str(raster), "OUTPUT": str(output), "METHOD": "KMeans"}))
    process = subprocess.Popen([sys.executable, "-m", "engine.worker", "cluster", str(params)], cwd=REPO,
                               stdout=subprocess.PIPE, text=True, start_new_session=True)
    for line in process.stdout:  # kill during the block-wise pass, as QGIS does on cancel
        event = json.loads(line)
        if event["type"] == "progress" and event["percent"] > 60:
            os.killpg(process.pid, signal.SIGKILL)
            break
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert not output.exists() and (tmp_path / "c.partial.tif").exists()
    labels, _, _, _ = cluster(tmp_path, raster, METHOD="KMeans")  # the next run starts over and completes
    assert labels.shape == (1500, 1500) and not (tmp_path / "c.partial.tif").exists()


def test_more_clusters_than_sampled_pixels_names_n_clusters(tmp_path):
    # scikit-learn 1.9.1 raises ValueError("n_samples=16 should be >= n_clusters=20."), which was once reported
    # as "SK_PARAM: KMeans failed: ..."
    raster, _ = regions_raster(tmp_path / "r.tif", 4, 4, bands=3)
    with pytest.raises(ParameterError) as info:
        cluster(tmp_path, raster, METHOD="KMeans", N_CLUSTERS=20)
    assert info.value.parameter == "N_CLUSTERS" and "20" in str(info.value) and "16" in str(info.value)


def test_polygons_of_the_clusters_have_their_pixel_areas_and_names(tmp_path):
    raster, _ = regions_raster(tmp_path / "f.tif", width=64, height=48, nodata_corner=8)
    labels, _, outputs, _ = cluster(tmp_path, raster, N_CLUSTERS=4, OUTPUT_POLYGONS=str(tmp_path / "c.gpkg"),
                                    MIN_AREA=50)
    import geopandas as gpd

    polygons = gpd.read_file(outputs["OUTPUT_POLYGONS"])
    assert outputs["POLYGONS"] == len(polygons) == 4  # one vertical stripe each
    for label in range(4):
        row = polygons[polygons.class_value == label].iloc[0]
        assert row.area == pytest.approx((labels == label).sum() * 100) and row.class_name == f"cluster {label}"
    assert set(polygons.tool) == {"iamap:cluster"} and set(polygons.source) == {"c.tif"}
    assert json.loads(polygons.parameters.iloc[0])["N_CLUSTERS"] == 4
