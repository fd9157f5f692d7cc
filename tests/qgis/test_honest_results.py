"""No silent wrong result, through the real QGIS: a test layer that shares pixels with the training layer, a
SCHEDULER where a web server answers, a size given twice (SK_PARAM and N_COMPONENTS), a model file cut short,
overlapping polygons that disagree, the label field as fold field, a model applied where every pixel is nodata.
Each ends in a clear message naming the parameter (id and dialog label) or in a result that says what was left
out; inputs are never changed."""

from __future__ import annotations

import time

import geopandas as gpd
import numpy as np
import pytest

from testsupport.fake_servers import http_server
from ..fixtures import labelled_points, pixel_centres, regions_raster, square, write_raster
from .test_data_safety import failure, sha256

pytestmark = pytest.mark.qgis


@pytest.fixture
def scene(tmp_path):
    raster, truth = regions_raster(tmp_path / "scene.tif", 64, 48, bands=3, regions=3, noise=0.3)
    return raster, truth, labelled_points(tmp_path / "train.gpkg", raster, truth, 8)


def test_a_test_layer_that_is_the_training_layer_is_refused_and_shared_pixels_are_left_out(qgis, tmp_path, scene):
    raster, truth, train = scene
    before = sha256(raster), sha256(train)
    params = {"INPUT": raster, "TEMPLATE": train, "GT_COL": "label", "OUTPUT": tmp_path / "c.tif",
              "REPORT": tmp_path / "r.html"}
    text = failure(qgis, "iamap:ml", {**params, "TEMPLATE_TEST": train})
    assert "TEMPLATE_TEST: all 24 of its pixel(s) are training pixels too (under the features of the training layer " \
           "train (" in text and "In the dialog: \u201cIndependent test data\u201d" in text
    assert not (tmp_path / "c.tif").exists() and not (tmp_path / "r.html").exists()
    mixed = gpd.pd.concat([gpd.read_file(train).iloc[:5],
                           gpd.read_file(labelled_points(tmp_path / "fresh.gpkg", raster, truth, 4, seed=11))])
    mixed = mixed.drop_duplicates("geometry")  # a fresh point may fall on a training pixel: counted below
    shared = 5 + int(mixed.iloc[5:].geometry.isin(gpd.read_file(train).geometry).sum())
    mixed.to_file(tmp_path / "test.gpkg")
    results = qgis.run("iamap:ml", {**params, "TEMPLATE_TEST": tmp_path / "test.gpkg"})["results"]
    statement = f"{shared} of the {len(mixed)} test pixel(s) are training pixels too"
    assert results["VALIDATED_ON"].startswith("independent test layer test") and statement in results["VALIDATED_ON"]
    assert statement in (tmp_path / "r.html").read_text()
    assert (sha256(raster), sha256(train)) == before


def test_a_web_server_as_scheduler_fails_within_seconds_naming_it_and_leaves_nothing(qgis, tmp_path, scene):
    raster, _, _ = scene
    with http_server() as address:
        started = time.monotonic()
        text = failure(qgis, "iamap:cluster", {"INPUT": raster, "OUTPUT": tmp_path / "c.tif", "SCHEDULER": address})
        seconds = time.monotonic() - started
    assert seconds < 60  # QGIS's start-up and the 5 s the check waits for a greeting; it hung before
    assert f"SCHEDULER: something answers at {address}, but not a Dask scheduler: it sent nothing within 5 s" in text
    assert "In the dialog: \u201cDask scheduler (empty = this machine)\u201d" in text and "Out of memory" not in text
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".aux.xml")) == [
        "scene.tif", "train.gpkg"]


def test_a_size_in_sk_param_that_contradicts_n_components_is_refused_naming_both(qgis, tmp_path, scene):
    raster, _, _ = scene
    text = failure(qgis, "iamap:reduction", {"INPUT": raster, "OUTPUT": tmp_path / "r.tif", "N_COMPONENTS": 2,
                                             "SK_PARAM": '{"n_components": 5}'})
    assert "SK_PARAM: n_components = 5 conflicts with N_COMPONENTS = 2 (\u201cNumber of components" in text
    assert "remove n_components from SK_PARAM and set N_COMPONENTS" in text and not (tmp_path / "r.tif").exists()


def test_a_model_file_cut_short_is_said_damaged(qgis, tmp_path, scene):
    raster, _, _ = scene
    model = tmp_path / "k.iamapmodel"
    qgis.run("iamap:cluster", {"INPUT": raster, "OUTPUT": tmp_path / "c.tif", "SAVE_MODEL": model})
    model.write_bytes(model.read_bytes()[:2000])
    text = failure(qgis, "iamap:cluster", {"INPUT": raster, "OUTPUT": tmp_path / "d.tif", "LOAD_MODEL": model})
    assert "LOAD_MODEL: k.iamapmodel is a damaged IAMAP model file (2,000 bytes; its end is missing)" in text
    assert "TRUST_MODEL" not in text.split("LOAD_MODEL: k.iamapmodel")[1].split("\n")[0]
    assert not (tmp_path / "d.tif").exists()


def test_overlapping_polygons_that_disagree_lose_their_shared_pixels_and_the_log_counts_them(qgis, tmp_path, scene):
    raster, _, _ = scene
    x, y = pixel_centres(raster, [24, 24], [10, 50])
    layer = tmp_path / "overlap.gpkg"  # 9 x 9 pixels each, "a" and "b" overlapping over 4 columns; "c" apart
    gpd.GeoDataFrame({"label": ["a", "b", "c"]}, geometry=[square(x[0], y[0], 45), square(x[0] + 50, y[0], 45),
                                                          square(x[1], y[1], 45)], crs="EPSG:32633").to_file(layer)
    result = qgis.process("run", "iamap:ml", f"--INPUT={raster}", f"--TEMPLATE={layer}", "--GT_COL=label",
                          "--CV=none", f"--OUTPUT={tmp_path / 'c.tif'}")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "TEMPLATE: 72 pixel(s) of 2 feature(s) lie under features of different labels in 'label' (overlapping " \
           "features that disagree) and were left out" in result.stdout + result.stderr


def test_the_label_field_as_fold_field_is_refused_naming_both(qgis, tmp_path, scene):
    raster, _, train = scene
    text = failure(qgis, "iamap:ml", {"INPUT": raster, "TEMPLATE": train, "GT_COL": "label", "CV": "column",
                                      "FOLD_COL": "label", "OUTPUT": tmp_path / "c.tif"})
    assert "FOLD_COL: 'label' is also the field with the labels (GT_COL, \u201cField with the labels\u201d)" in text
    assert "In the dialog: \u201cField with the fold of each feature (CV = column)\u201d" in text
    assert not (tmp_path / "c.tif").exists()


def test_a_saved_model_applied_where_every_pixel_is_nodata_is_no_success(qgis, tmp_path, scene):
    raster, _, _ = scene
    model = tmp_path / "k.iamapmodel"
    qgis.run("iamap:cluster", {"INPUT": raster, "OUTPUT": tmp_path / "c.tif", "SAVE_MODEL": model})
    empty = write_raster(tmp_path / "empty.tif", np.full((3, 20, 20), np.nan, np.float32), nodata=float("nan"))
    text = failure(qgis, "iamap:cluster", {"INPUT": empty, "OUTPUT": tmp_path / "d.tif", "LOAD_MODEL": model})
    assert "INPUT: no pixel of the raster is valid in the selected band(s) 1, 2, 3 (all nodata), so the output " \
           "would hold nodata only" in text
    assert not (tmp_path / "d.tif").exists() and not (tmp_path / "d.partial.tif").exists()
