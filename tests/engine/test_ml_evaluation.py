"""The independent test layer is independent: its pixels that are training pixels too (the training layer given
again, a copy in another file and CRS, points on training pixels, polygons overlapping training polygons) are
left out and counted, a test layer with no other pixel is refused, and the report and VALIDATED_ON say so."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest

from engine.errors import ParameterError
from engine.events import Reporter
from engine.ml import run_ml

from ..fixtures import labelled_points, pixel_centres, regions_raster, square


@pytest.fixture
def scene(tmp_path):
    raster, truth = regions_raster(tmp_path / "r.tif", 96, 64, regions=3, noise=0.3)
    return raster, truth, labelled_points(tmp_path / "train.gpkg", raster, truth, 10)


def run(tmp_path, raster, **params):
    reporter = Reporter()
    outputs = run_ml({"INPUT": str(raster), "GT_COL": "label", "OUTPUT": str(tmp_path / "pred.tif"),
                      "REPORT": str(tmp_path / "r.html"), **params}, reporter)
    warnings = [e["message"] for e in reporter.events if e["type"] == "warning"]
    return outputs, warnings, (tmp_path / "r.html").read_text()


def test_the_training_layer_as_test_layer_is_refused_even_with_labels_that_mean_nothing(tmp_path):
    raster, truth = regions_raster(tmp_path / "r.tif", 64, 64, regions=4, noise=0.3)
    rng = np.random.default_rng(1)
    x, y = pixel_centres(raster, rng.integers(0, 64, 80), rng.integers(0, 64, 80))
    layer = tmp_path / "random.gpkg"  # labels unrelated to the pixels: a model can only remember them
    gpd.GeoDataFrame({"label": rng.choice(list("abcd"), 80)}, geometry=gpd.points_from_xy(x, y),
                     crs="EPSG:32633").to_file(layer)
    with pytest.raises(ParameterError) as info:
        run(tmp_path, raster, TEMPLATE=str(layer), TEMPLATE_TEST=str(layer))
    assert info.value.parameter == "TEMPLATE_TEST"
    assert "pixel(s) are training pixels too (under the features of the training layer random.gpkg): figures on " \
           "them would not be independent" in str(info.value) and "leave TEMPLATE_TEST empty" in str(info.value)
    assert not (tmp_path / "pred.tif").exists() and not (tmp_path / "r.html").exists()


def test_a_copy_of_the_training_layer_in_another_file_and_crs_is_refused(tmp_path, scene):
    raster, _, train = scene
    gpd.read_file(train).to_crs("EPSG:4326").to_file(tmp_path / "copy.shp")
    with pytest.raises(ParameterError, match=r"TEMPLATE_TEST: all 30 of its pixel\(s\) are training pixels too"):
        run(tmp_path, raster, TEMPLATE=str(train), TEMPLATE_TEST=str(tmp_path / "copy.shp"))


def test_test_points_on_training_pixels_are_left_out_and_counted(tmp_path, scene):
    raster, truth, train = scene
    fresh = gpd.read_file(labelled_points(tmp_path / "fresh.gpkg", raster, truth, 6, seed=5))
    taken = gpd.read_file(train).iloc[:7]
    taken["geometry"] = taken.geometry.translate(2.0, -3.0)  # moved inside the same 10 m pixel
    mixed = gpd.GeoDataFrame(pd_concat([taken, fresh]), crs="EPSG:32633")
    mixed.to_file(tmp_path / "test.gpkg")
    shared_with_fresh = int(np.isin(fresh.geometry.to_wkt(), gpd.read_file(train).geometry.to_wkt()).sum())
    outputs, warnings, page = run(tmp_path, raster, TEMPLATE=str(train), TEMPLATE_TEST=str(tmp_path / "test.gpkg"))
    left_out = 7 + shared_with_fresh
    statement = (f"{left_out} of the {len(mixed)} test pixel(s) are training pixels too (under features of "
                 f"the training layer train.gpkg) and were left out")
    assert any(statement in w for w in warnings)
    assert statement in page and "Independence from the training data" in page
    assert outputs["VALIDATED_ON"].startswith(f"independent test layer test.gpkg ({statement}")
    assert f"{len(mixed) - left_out} pixels" in page.split("Independent test layer")[1]


def test_a_test_polygon_overlapping_a_training_polygon_loses_the_pixels_inside_it_drawn_or_not(tmp_path):
    import re

    raster, truth = regions_raster(tmp_path / "r.tif", 96, 64, regions=2, noise=0.3)
    x, y = pixel_centres(raster, np.array([32, 32]), np.array([20, 70]))
    # squares of 19 x 19 pixels; the first test square is 10 columns right of the first training square (9 of its
    # columns inside it: 171 pixels), the second 20 rows above the second (none)
    training = gpd.GeoDataFrame({"label": ["class 0", "class 1"]},
                                geometry=[square(x[0], y[0], 95), square(x[1], y[1], 95)], crs="EPSG:32633")
    training.to_file(tmp_path / "train.gpkg")
    test = gpd.GeoDataFrame({"label": ["class 0", "class 1"]},
                            geometry=[square(x[0] + 100, y[0], 95), square(x[1], y[1] + 200, 95)], crs="EPSG:32633")
    test.to_file(tmp_path / "test.gpkg")
    params = {"TEMPLATE": str(tmp_path / "train.gpkg"), "TEMPLATE_TEST": str(tmp_path / "test.gpkg"), "CV": "none"}
    outputs, warnings, page = run(tmp_path, raster, SAMPLE_PER_POLYGON=1000, **params)
    assert any("171 of the 722 test pixel(s) are training pixels too" in w for w in warnings), warnings
    assert "2 features, 551 pixels" in page
    # the training draws 30 of its squares' 361 pixels, the test 30 of its own: the test pixels in the first
    # training square are left out, drawn for training or not (about 30 * 171 / 361 = 14 of them)
    outputs, warnings, page = run(tmp_path, raster, SAMPLE_PER_POLYGON=30, **params)
    [left_out] = [int(m.group(1)) for w in warnings for m in [re.search(r"(\d+) of the 60 test pixel", w)] if m]
    assert 5 <= left_out <= 25 and f"2 features, {60 - left_out} pixels" in page


def test_a_disjoint_test_layer_is_said_to_be_checked_independent(tmp_path, scene):
    raster, truth, train = scene
    fresh = gpd.read_file(labelled_points(tmp_path / "fresh.gpkg", raster, truth, 6, seed=5))
    fresh = fresh[~np.isin(fresh.geometry.to_wkt(), gpd.read_file(train).geometry.to_wkt())]
    fresh.to_file(tmp_path / "test.gpkg")
    outputs, warnings, page = run(tmp_path, raster, TEMPLATE=str(train), TEMPLATE_TEST=str(tmp_path / "test.gpkg"))
    assert outputs["VALIDATED_ON"] == "independent test layer test.gpkg" and outputs["ACCURACY"] > 0.9
    assert f"Independent: none of the {len(fresh)} test pixel(s) is under a feature of the training layer " \
           "train.gpkg (checked)." in page
    assert not [w for w in warnings if "TEMPLATE_TEST" in w]


def test_a_saved_model_is_checked_against_the_layer_it_was_trained_on_while_it_exists(tmp_path, scene):
    raster, _, train = scene
    run(tmp_path, raster, TEMPLATE=str(train), SAVE_MODEL=str(tmp_path / "m.iamapmodel"))
    with pytest.raises(ParameterError, match="TEMPLATE_TEST: all 30 of its pixel"):
        run(tmp_path, raster, LOAD_MODEL=str(tmp_path / "m.iamapmodel"), TEMPLATE_TEST=str(train))
    copy = tmp_path / "copy.gpkg"
    copy.write_bytes(train.read_bytes())
    train.unlink()
    outputs, warnings, page = run(tmp_path, raster, LOAD_MODEL=str(tmp_path / "m.iamapmodel"),
                                  TEMPLATE_TEST=str(copy))
    assert any(f"the model's training layer ({train}) cannot be read here, so whether the test layer shares pixels "
               "with it is not checked" in w for w in warnings)
    assert "Not checked: the layer the model was trained on cannot be read here." in page
    assert "Not checked" in outputs["VALIDATED_ON"]


def pd_concat(frames):
    import pandas as pd

    return pd.concat(frames, ignore_index=True)
