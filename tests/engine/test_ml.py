"""The ml tool end to end in the engine: known classes and a known continuous target mapped back over the whole
raster, estimators without random_state, confidence, models saved and applied, the real scene, and the errors
that name their parameter."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import rasterio

from engine.errors import ParameterError
from engine.events import Reporter
from engine.ml import run_ml

from ..fixtures import all_pixels, described, labelled_points, pixel_centres, regions_raster, square, write_raster


def ml(tmp_path, raster, template, name="pred.tif", **params):
    reporter = Reporter()
    outputs = run_ml({"INPUT": str(raster), "TEMPLATE": str(template), "GT_COL": "label",
                      "OUTPUT": str(tmp_path / name), **params}, reporter)
    with rasterio.open(outputs["OUTPUT"]) as src:
        return src.read(1), described(src), outputs, reporter


def messages(reporter) -> str:
    return " ".join(e.get("message", "") for e in reporter.events)


@pytest.fixture
def stripes(tmp_path):
    """4 classes as vertical stripes of a 96 x 128 x 8 raster with a nodata corner, and 12 labelled points each."""
    raster, truth = regions_raster(tmp_path / "r.tif", 128, 96, regions=4, noise=0.3, nodata_corner=16)
    points = labelled_points(tmp_path / "points.gpkg", raster, truth, 12, names=lambda k: "abcd"[k] + "-class",
                             crs="EPSG:4326")
    return raster, truth, points


def test_known_classes_are_predicted_back_over_the_whole_raster(tmp_path, stripes):
    raster, truth, points = stripes
    labels, src, outputs, reporter = ml(tmp_path, raster, points)
    assert outputs["CLASSES"] == {"a-class": 1, "b-class": 2, "c-class": 3, "d-class": 4}  # alphabetical codes
    valid = truth >= 0
    accuracy = np.mean(labels[valid] == truth[valid] + 1)
    print(f"whole-raster accuracy {accuracy:.4f}")
    assert accuracy > 0.98
    assert src.dtypes[0] == "uint8" and src.nodata == 255 and np.all(labels[~valid] == 255)
    with rasterio.open(raster) as source:
        assert src.crs == source.crs and src.transform == source.transform and src.shape == source.shape
    with rasterio.open(outputs["OUTPUT"]) as out:
        colours = out.colormap(1)
        assert colours[1][:3] == (0x1f, 0x77, 0xb4) and colours[4][:3] == (0xd6, 0x27, 0x28)
        assert json.loads(out.tags()["CLASSES"]) == {"1": "a-class", "2": "b-class", "3": "c-class", "4": "d-class"}
    assert outputs["VALIDATED_ON"].startswith("cross-validation: 5-fold by feature")
    assert outputs["ACCURACY"] > 0.95 and outputs["KAPPA"] > 0.9 and outputs["F1_MACRO"] > 0.9
    assert sum(outputs["CLASS_PIXELS"].values()) == valid.sum()
    sidecar = json.loads((tmp_path / "pred.iamap.json").read_text())
    assert sidecar["model"]["classes"]["names"] == ["a-class", "b-class", "c-class", "d-class"]
    assert not list(tmp_path.glob("*partial*"))
    assert "48 labelled feature(s) (48 point(s)) give 48 pixel(s)" in messages(reporter)


def test_whole_number_labels_keep_their_value_and_polygons_give_their_pixels(tmp_path):
    raster, truth = regions_raster(tmp_path / "r.tif", 120, 60, regions=3, noise=0.3)
    centre_rows, centre_cols = np.array([30, 30, 30]), np.array([20, 60, 100])
    x, y = pixel_centres(raster, centre_rows, centre_cols)
    polygons = gpd.GeoDataFrame({"label": [300, 10, 20]}, geometry=[square(a, b, 55) for a, b in zip(x, y)],
                                crs="EPSG:32633")
    polygons.to_file(tmp_path / "polygons.shp")
    labels, src, outputs, reporter = ml(tmp_path, raster, tmp_path / "polygons.shp", CV="none",
                                        SAMPLE_PER_POLYGON=100)
    expected = np.array([300, 10, 20])[truth]
    assert np.mean(labels == expected) > 0.98
    assert outputs["CLASSES"] == {"10": 10, "20": 20, "300": 300}
    assert src.dtypes[0] == "uint16" and src.nodata == 65535  # 300 does not fit a byte
    assert "3 labelled feature(s) (3 polygon(s)) give 300 pixel(s)" in messages(reporter)  # 11 x 11 -> 100 each
    assert outputs["VALIDATED_ON"] == "not validated" and "ACCURACY" not in outputs


def test_a_continuous_target_is_mapped_back_by_a_regressor(tmp_path):
    rng = np.random.default_rng(1)
    data = rng.uniform(0, 1, (3, 80, 100)).astype(np.float32)
    target = 3 * data[0] - 2 * data[1] + 0.5
    data[:, :5, :5] = np.nan
    raster = write_raster(tmp_path / "c.tif", data, nodata=float("nan"))
    rows, cols = rng.integers(5, 80, 200), rng.integers(5, 100, 200)
    x, y = pixel_centres(raster, rows, cols)
    gpd.GeoDataFrame({"label": target[rows, cols]}, geometry=gpd.points_from_xy(x, y), crs="EPSG:32633").to_file(
        tmp_path / "t.gpkg")
    predicted, src, outputs, _ = ml(tmp_path, raster, tmp_path / "t.gpkg", METHOD="LinearRegression", CV="kfold")
    assert outputs["R2"] > 0.99 and outputs["RMSE"] < 0.05 and outputs["MAE"] < 0.05
    assert src.dtypes[0] == "float32" and np.isnan(src.nodata) and np.isnan(predicted[:5, :5]).all()
    valid = np.isfinite(predicted)
    residual = predicted[valid] - target[valid]
    r2 = 1 - residual.var() / target[valid].var()
    print(f"whole-raster R2 {r2:.5f}")
    assert r2 > 0.999
    low, high = outputs["DISPLAY_RANGE"]
    assert target.min() < low < high < target.max()
    forest = ml(tmp_path, raster, tmp_path / "t.gpkg", "forest.tif", METHOD="RandomForestRegressor")[2]
    assert forest["R2"] > 0.8 and forest["VALIDATED_ON"].startswith("cross-validation: 5-fold by feature")
    rows, cols = rng.integers(5, 80, 50), rng.integers(5, 100, 50)
    x, y = pixel_centres(raster, rows, cols)
    gpd.GeoDataFrame({"label": target[rows, cols]}, geometry=gpd.points_from_xy(x, y), crs="EPSG:32633").to_file(
        tmp_path / "test.gpkg")
    tested = ml(tmp_path, raster, tmp_path / "t.gpkg", "tested.tif", METHOD="LinearRegression", CV="none",
                TEMPLATE_TEST=str(tmp_path / "test.gpkg"), REPORT=str(tmp_path / "r.html"))[2]
    assert tested["VALIDATED_ON"] == "independent test layer test.gpkg" and tested["R2"] > 0.99
    assert "Predicted against observed" in (tmp_path / "r.html").read_text()


@pytest.mark.parametrize("method, sk_param", [
    ("KNeighborsClassifier", ""), ("NearestCentroid", ""), ("SVC", ""), ("MLPClassifier", '{"max_iter": 1000}'),
    ("LogisticRegression", ""),
    ("HistGradientBoostingClassifier", '{"min_samples_leaf": 3}'),  # its default leaves of 20 pixels need more data
])
def test_estimators_with_and_without_random_state_classify(tmp_path, stripes, method, sk_param):
    raster, truth, points = stripes
    labels, _, outputs, reporter = ml(tmp_path, raster, points, METHOD=method, NFOLDS=3, SK_PARAM=sk_param)
    valid = truth >= 0
    assert np.mean(labels[valid] == truth[valid] + 1) > 0.9
    assert outputs["ACCURACY"] > 0.85
    assert not [e for e in reporter.events if e["type"] == "warning"]


def test_confidence_is_the_probability_of_the_predicted_class(tmp_path, stripes):
    raster, truth, points = stripes
    labels, _, outputs, _ = ml(tmp_path, raster, points, OUTPUT_CONFIDENCE=str(tmp_path / "conf.tif"))
    with rasterio.open(outputs["OUTPUT_CONFIDENCE"]) as src:
        confidence = src.read(1)
        assert src.dtypes[0] == "float32"
    valid = truth >= 0
    assert np.isnan(confidence[~valid]).all()
    assert (confidence[valid] >= 0.25).all() and (confidence[valid] <= 1).all()  # the winner of 4 classes
    assert np.median(confidence[valid]) > 0.8
    with pytest.raises(ParameterError, match=r'OUTPUT_CONFIDENCE: SVC gives no class probabilities \(set '
                                             r'{"probability": true} in SK_PARAM\)'):
        ml(tmp_path, raster, points, "svc.tif", METHOD="SVC", OUTPUT_CONFIDENCE=str(tmp_path / "c2.tif"))
    assert not (tmp_path / "svc.tif").exists()


def test_a_saved_model_maps_another_raster_and_is_evaluated_on_a_test_layer(tmp_path, stripes):
    raster, truth, points = stripes
    model = tmp_path / "m.iamapmodel"
    first, _, trained, _ = ml(tmp_path, raster, points, SAVE_MODEL=str(model))
    test_points = labelled_points(tmp_path / "test.gpkg", raster, truth, 5, seed=9,
                                  names=lambda k: "abcd"[k] + "-class")
    reporter = Reporter()
    applied = run_ml({"INPUT": str(raster), "LOAD_MODEL": str(model), "TEMPLATE_TEST": str(test_points),
                      "OUTPUT": str(tmp_path / "applied.tif")}, reporter)
    with rasterio.open(applied["OUTPUT"]) as src:
        np.testing.assert_array_equal(src.read(1), first)
    assert applied["VALIDATED_ON"] == "independent test layer test.gpkg" and applied["ACCURACY"] > 0.9
    assert "Applying the saved model: RandomForestClassifier (ml)" in messages(reporter)
    two_bands = tmp_path / "two.tif"
    with rasterio.open(raster) as src:
        write_raster(two_bands, src.read([1, 2]), nodata=float("nan"))
    with pytest.raises(ParameterError, match=r"BANDS: the model in m.iamapmodel was fitted on 8 band\(s\)"):
        run_ml({"INPUT": str(two_bands), "LOAD_MODEL": str(model), "OUTPUT": str(tmp_path / "x.tif")}, Reporter())


def test_1_0_2_ml_pkls_under_trust_model_predict_raw_pixels_with_1_0_2_s_codes(tmp_path):
    import joblib
    import pandas as pd
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    raster, truth = regions_raster(tmp_path / "r.tif", 40, 30, bands=4, regions=3, noise=0.3, nodata_corner=6)
    pixels, valid = all_pixels(raster), truth.ravel() >= 0
    rng = np.random.default_rng(2)
    picked = rng.choice(np.flatnonzero(valid), 60, replace=False)
    names = np.array(["water", "forest", "crop"])[truth.ravel()[picked]]
    # 1.0.2's ml: raw band values, the labels replaced by pandas.factorize codes, the bare estimator dumped
    forest = RandomForestClassifier(20, random_state=42).fit(pixels[picked], pd.factorize(names)[0])
    joblib.dump(forest, tmp_path / "randomforestclassifier.pkl")
    joblib.dump(RandomForestRegressor(10, random_state=42).fit(pixels[picked], pixels[picked, 0] * 2),
                tmp_path / "randomforestregressor.pkl")
    with pytest.raises(ParameterError, match="LOAD_MODEL: randomforestclassifier.pkl is not an IAMAP model file"):
        run_ml({"INPUT": str(raster), "LOAD_MODEL": str(tmp_path / "randomforestclassifier.pkl"),
                "OUTPUT": str(tmp_path / "x.tif")}, Reporter())
    reporter = Reporter()
    outputs = run_ml({"INPUT": str(raster), "LOAD_MODEL": str(tmp_path / "randomforestclassifier.pkl"),
                      "TRUST_MODEL": True, "OUTPUT": str(tmp_path / "classes.tif"),
                      "SAVE_MODEL": str(tmp_path / "rf.iamapmodel")}, reporter)
    with rasterio.open(outputs["OUTPUT"]) as src:
        classes, nodata = src.read(1).ravel(), src.nodata
    np.testing.assert_array_equal(classes[valid], forest.predict(pixels[valid]))
    assert np.all(classes[~valid] == nodata) and outputs["CLASSES"] == {"0": 0, "1": 1, "2": 2}
    assert "a pickle of IAMAP 1.0.2's bare RandomForestClassifier" in messages(reporter)
    resaved = run_ml({"INPUT": str(raster), "LOAD_MODEL": str(tmp_path / "rf.iamapmodel"),
                      "OUTPUT": str(tmp_path / "again.tif")}, Reporter())
    with rasterio.open(resaved["OUTPUT"]) as src:
        np.testing.assert_array_equal(src.read(1).ravel(), classes)
    outputs = run_ml({"INPUT": str(raster), "LOAD_MODEL": str(tmp_path / "randomforestregressor.pkl"),
                      "TRUST_MODEL": True, "OUTPUT": str(tmp_path / "numbers.tif")}, Reporter())
    with rasterio.open(outputs["OUTPUT"]) as src:
        numbers = src.read(1).ravel()
        assert src.dtypes[0] == "float32" and outputs["TASK"] == "regression"
    regressor = joblib.load(tmp_path / "randomforestregressor.pkl")
    np.testing.assert_allclose(numbers[valid], regressor.predict(pixels[valid]), rtol=1e-6)


def test_the_real_scene_trains_from_points_and_polygons(tmp_path, assets):
    labels, src, outputs, reporter = ml(tmp_path, assets / "test.tif", assets / "ml.shp", GT_COL="Type")
    assert outputs["CLASSES"] == {"forest": 1, "river": 2} and src.dtypes[0] == "uint8"
    assert set(np.unique(labels)) <= {1, 2, 255} and (labels == 2).any() and (labels == 1).any()
    assert "4 outside the raster or EXTENT" in messages(reporter)
    assert outputs["VALIDATED_ON"].startswith("cross-validation") and outputs["ACCURACY"] > 0.9
    _, _, tested, reporter = ml(tmp_path, assets / "test.tif", assets / "ml.shp", "tested.tif", GT_COL="Type",
                                TEMPLATE_TEST=str(assets / "ml_poly.shp"), REPORT=str(tmp_path / "r.html"))
    assert "TEMPLATE_TEST: 2 feature(s) of classes the model does not know (dense_forest, open) were left out" \
        in messages(reporter)
    page = (tmp_path / "r.html").read_text()
    assert "2 of classes the model does not know" in page  # the test layer's left-out features
    assert "TEMPLATE: 4 feature(s) outside the raster or EXTENT were left out." in page  # the run's warnings
    _, _, poly, reporter = ml(tmp_path, assets / "test.tif", assets / "ml_poly.shp", "poly.tif", GT_COL="Type",
                              CV="none", SAMPLE_PER_POLYGON=200)
    assert poly["CLASSES"] == {"dense_forest": 1, "open": 2, "river": 3}
    assert "3 labelled feature(s) (3 polygon(s)) give 600 pixel(s)" in messages(reporter)


@pytest.mark.parametrize("params, error", [
    ({"GT_COL": "kind"}, r"GT_COL: the TEMPLATE layer points.gpkg has no field 'kind'; its fields are: label"),
    ({"CV": "stratified", "NFOLDS": 20}, r"NFOLDS: class 'a-class' has 12 labelled pixel\(s\), fewer than the 20 "
                                         r"folds"),
    ({"METHOD": "RandomForestRegressor"}, r"GT_COL: holds text \('a-class'\), and RandomForestRegressor is a "
                                          r"regressor"),
    ({"CV": "column"}, "FOLD_COL: CV = column reads each feature's fold from a field"),
    ({"CV": "column", "FOLD_COL": "label"}, "FOLD_COL: 'label' is also the field with the labels \\(GT_COL, "
                                            "\u201cField with the labels\u201d\\): each fold would hold one class"),
    ({"SK_PARAM": '{"n_trees": 5}'}, "SK_PARAM: RandomForestClassifier has no parameter 'n_trees'"),
    ({"REPORT": "report.pdf"}, "REPORT: report.pdf: the report is an HTML page"),
    ({"METHOD": "RandomForestRegressor", "OUTPUT_POLYGONS": "p.gpkg"}, "OUTPUT_POLYGONS: RandomForestRegressor is a "
                                                                       "regressor"),
])
def test_bad_parameters_are_named(tmp_path, stripes, params, error):
    raster, _, points = stripes
    with pytest.raises(ParameterError, match=error):
        ml(tmp_path, raster, points, **params)
    assert not (tmp_path / "pred.tif").exists()


def test_decimal_labels_need_a_regressor_and_far_features_are_refused(tmp_path, stripes):
    raster, _, _ = stripes
    x, y = pixel_centres(raster, np.array([40, 50]), np.array([40, 90]))
    gpd.GeoDataFrame({"label": [0.25, 1.5]}, geometry=gpd.points_from_xy(x, y), crs="EPSG:32633").to_file(
        tmp_path / "decimal.gpkg")
    with pytest.raises(ParameterError, match=r"GT_COL: holds decimal numbers \(such as 0.25\), and "
                                             r"RandomForestClassifier is a classifier"):
        ml(tmp_path, raster, tmp_path / "decimal.gpkg", CV="none")
    gpd.GeoDataFrame({"label": ["a", "b"]}, geometry=gpd.points_from_xy(x + 1e5, y), crs="EPSG:32633").to_file(
        tmp_path / "far.gpkg")
    with pytest.raises(ParameterError, match=r"TEMPLATE: none of the 2 labelled feature\(s\) of far.gpkg lies on a "
                                             "valid pixel"):
        ml(tmp_path, raster, tmp_path / "far.gpkg")


def test_polygons_of_the_classes_carry_their_names_and_pixel_areas(tmp_path, stripes):
    raster, truth, points = stripes
    labels, _, outputs, _ = ml(tmp_path, raster, points, CV="none", OUTPUT_POLYGONS=str(tmp_path / "classes.gpkg"))
    polygons = gpd.read_file(outputs["OUTPUT_POLYGONS"])
    assert set(polygons.class_name) == {"a-class", "b-class", "c-class", "d-class"}
    for code in range(1, 5):
        assert polygons[polygons.class_value == code].area.sum() == pytest.approx((labels == code).sum() * 100)
    assert 255 not in set(polygons.class_value) and set(polygons.tool) == {"iamap:ml"}
    assert outputs["POLYGONS"] == len(polygons)


def test_the_log_report_and_outputs_name_the_layers_as_the_user_chose_them_not_processing_s_copies(tmp_path,
                                                                                                  stripes):
    raster, truth, points = stripes
    copies = tmp_path / "processing_abc"  # where Processing writes the copy of a memory layer or a GeoJSON
    copies.mkdir()
    template = gpd.read_file(points)
    template.to_file(copies / "TEMPLATE.gpkg")
    labelled_points(copies / "TEMPLATE_TEST.gpkg", raster, truth, 5, seed=9, names=lambda k: "abcd"[k] + "-class")
    names = {"TEMPLATE": "land points (/data/land_points.geojson)", "TEMPLATE_TEST": "check points (memory layer)"}
    _, _, outputs, reporter = ml(tmp_path, raster, copies / "TEMPLATE.gpkg",
                                 TEMPLATE_TEST=str(copies / "TEMPLATE_TEST.gpkg"), REPORT=str(tmp_path / "r.html"),
                                 SAVE_MODEL=str(tmp_path / "m.iamapmodel"), LAYER_NAMES=names)
    page = (tmp_path / "r.html").read_text()
    assert "processing_abc" not in page and "TEMPLATE.gpkg" not in page and "TEMPLATE_TEST.gpkg" not in page
    assert "<h2>Training data</h2><p>land points (/data/land_points.geojson), labels in" in page
    assert "<h2>Independent test layer: check points (memory layer)</h2>" in page
    log = messages(reporter)
    assert "TEMPLATE land points (/data/land_points.geojson): 48 labelled feature(s)" in log
    assert "TEMPLATE_TEST check points (memory layer): 20 labelled feature(s)" in log
    assert "processing_abc" not in log and "TEMPLATE.gpkg" not in log
    assert outputs["VALIDATED_ON"] == "independent test layer check points (memory layer)"


def test_land_cover_classes_get_their_conventional_colours_in_the_raster_the_report_and_a_saved_model(tmp_path):
    raster, truth = regions_raster(tmp_path / "r.tif", 128, 96, regions=4, noise=0.3)
    names = ["water", "Forêt", "bare soil", "cropland"]
    points = labelled_points(tmp_path / "points.gpkg", raster, truth, 12, names=lambda k: names[k])
    model = tmp_path / "m.iamapmodel"
    _, _, outputs, _ = ml(tmp_path, raster, points, REPORT=str(tmp_path / "r.html"), SAVE_MODEL=str(model),
                          CLASS_COLOURS='{"cropland": "#ffd700"}')
    expected = {"water": "#1f78b4", "Forêt": "#1b7837", "bare soil": "#a0662f", "cropland": "#ffd700"}
    assert outputs["CLASS_COLOURS"] == expected
    with rasterio.open(outputs["OUTPUT"]) as out:
        table = out.colormap(1)
    for name, code in outputs["CLASSES"].items():
        assert "#{:02x}{:02x}{:02x}".format(*table[code][:3]) == expected[name]
    page = (tmp_path / "r.html").read_text()
    for name, colour in expected.items():
        assert f'<span class="sw" style="background:{colour}"></span>{name}' in page
    reporter = Reporter()  # the saved model keeps its colours
    applied = run_ml({"INPUT": str(raster), "LOAD_MODEL": str(model), "OUTPUT": str(tmp_path / "applied.tif")},
                     reporter)
    assert applied["CLASS_COLOURS"] == expected
