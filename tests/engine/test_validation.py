"""Folds of every CV method (a feature's pixels never in two folds of group and spatial CV), the
cross-validation's pooled figures, and metrics against values computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from engine.class_codes import ClassCodes
from engine.errors import ParameterError
from engine.events import Reporter
from engine.labelled_samples import LabelledPixels
from engine.validation import (assign_folds, classification_metrics, cross_validate, regression_metrics,
                               spatial_blocks)

CLASSES = ClassCodes((1, 2, 3), ("forest", "river", "town"))


def polygons_sample(features: int = 30, pixels_per_feature: int = 20, seed: int = 0) -> LabelledPixels:
    """``features`` polygons on a 1 km grid, each giving ``pixels_per_feature`` pixels, class = feature % 3 + 1."""
    rng = np.random.default_rng(seed)
    owners = np.repeat(np.arange(features), pixels_per_feature)
    xy = np.column_stack([np.arange(features) % 6 * 1000.0, np.arange(features) // 6 * 1000.0])
    labels = np.array(["forest", "river", "town"])[owners % 3]
    values = rng.normal(size=(len(owners), 4)).astype(np.float32) + (owners % 3)[:, None]
    folds = np.array(["north", "south"])[(xy[owners, 1] > 2000).astype(int)]
    return LabelledPixels(values, labels, owners, xy, folds, "p.gpkg", features)


def folds_of(cv: str, sample: LabelledPixels, nfolds: int = 5, classes=CLASSES, reporter=None):
    targets = classes.encode(sample.labels) if classes else sample.values[:, 0].astype(np.float64)
    return assign_folds(cv, nfolds, sample, targets, classes, 0, "zone", reporter or Reporter())


@pytest.mark.parametrize("cv", ["group", "spatial"])
def test_group_and_spatial_folds_keep_each_polygon_whole(cv):
    sample = polygons_sample()
    folds, description = folds_of(cv, sample)
    per_feature = [np.unique(folds[sample.features == f]).size for f in range(30)]
    assert per_feature == [1] * 30
    assert sorted(np.unique(folds)) == [0, 1, 2, 3, 4]
    if cv == "spatial":  # and whole blocks: features of one block share their fold
        blocks, side = spatial_blocks(sample.feature_xy, 5)
        assert description.startswith("5-fold by spatial block") and side == pytest.approx(5000 / 5)
        for block in np.unique(blocks):
            members = np.isin(sample.features, np.flatnonzero(blocks == block))
            assert np.unique(folds[members]).size == 1


def test_pixel_folds_split_polygons_and_say_it_is_optimistic():
    sample, reporter = polygons_sample(), Reporter()
    folds, _ = folds_of("kfold", sample, reporter=reporter)
    assert max(np.unique(folds[sample.features == f]).size for f in range(30)) > 1
    assert "the figures are optimistic" in reporter.events[-1]["message"]


def test_stratified_folds_keep_class_proportions():
    sample = polygons_sample()
    folds, description = folds_of("stratified", sample)
    for k in range(5):
        assert np.bincount(CLASSES.encode(sample.labels[folds == k]))[1:].tolist() == [40, 40, 40]
    assert description == "5-fold over pixels, stratified by class"


def test_column_folds_follow_the_field():
    sample = polygons_sample()
    folds, description = folds_of("column", sample)
    assert description == "2 folds from the field zone"
    np.testing.assert_array_equal(folds, (sample.folds == "south").astype(int))


def test_column_folds_that_follow_the_labels_are_refused_and_a_class_in_one_fold_is_named():
    sample = polygons_sample()
    sample.folds = sample.labels.copy()  # the label field as the fold field, by content
    with pytest.raises(ParameterError) as info:
        folds_of("column", sample)
    assert info.value.parameter == "FOLD_COL"
    assert "every class lies in a single fold of 'zone'" in str(info.value) and "(GT_COL)" in str(info.value)
    sample.folds = np.where(sample.labels == "town", "north", np.array(["north", "south"])[sample.features % 2])
    reporter = Reporter()
    folds_of("column", sample, reporter=reporter)
    assert [e["message"] for e in reporter.events if e["type"] == "warning"] == [
        "FOLD_COL: class(es) 'town' lie in a single fold of 'zone': when that fold is validated, the model has never "
        "seen them, and they count as errors."]


@pytest.mark.parametrize("cv, nfolds, pixels, classes, error", [
    ("group", 40, 20, CLASSES, r"NFOLDS: only 30 labelled feature\(s\), fewer than the 40 folds"),
    ("stratified", 25, 2, CLASSES, r"NFOLDS: class 'forest' has 20 labelled pixel\(s\), fewer than the 25 folds"),
    ("stratified", 5, 20, None, "CV: stratified needs classes and the estimator is a regressor"),
    ("spatial", 31, 20, CLASSES, r"NFOLDS: only 30 spatial block\(s\) hold training features"),
])
def test_impossible_splits_name_the_parameter(cv, nfolds, pixels, classes, error):
    with pytest.raises(ParameterError, match=error):
        folds_of(cv, polygons_sample(pixels_per_feature=pixels), nfolds, classes)


def test_a_single_feature_cannot_be_group_validated():
    sample = polygons_sample(features=1)
    sample.labels[:] = "forest"
    with pytest.raises(ParameterError, match=r"NFOLDS: only 1 labelled feature\(s\): a group cross-validation needs "
                                             "at least 2"):
        folds_of("group", sample)


def test_cross_validation_pools_out_of_fold_predictions():
    from sklearn.neighbors import KNeighborsClassifier

    sample = polygons_sample()
    targets = CLASSES.encode(sample.labels)
    folds, _ = folds_of("group", sample)
    result = cross_validate(lambda: KNeighborsClassifier(3), sample.values, targets, folds, CLASSES, sample)
    assert result["folds_count"] == 5 and sum(f["test_pixels"] for f in result["folds"]) == 600
    assert all(f["train_pixels"] + f["test_pixels"] == 600 for f in result["folds"])
    assert sum(f["test_features"] for f in result["folds"]) == 30
    pooled = sum(f["metrics"]["accuracy"] * f["test_pixels"] for f in result["folds"]) / 600
    assert result["overall"]["accuracy"] == pytest.approx(pooled)
    assert result["overall"]["accuracy"] > 0.6 and np.sum(result["overall"]["confusion"]) == 600


def test_classification_metrics_match_hand_computed_values():
    observed = np.array([1, 1, 1, 1, 2, 2, 2, 3, 3, 3])
    predicted = np.array([1, 1, 1, 2, 2, 2, 1, 3, 3, 2])
    m = classification_metrics(observed, predicted, CLASSES)
    assert m["accuracy"] == pytest.approx(0.7)
    assert m["confusion"] == [[3, 1, 0], [1, 2, 0], [0, 1, 2]]
    # kappa: p_o = 0.7, p_e = (4*4 + 3*4 + 3*2) / 100 = 0.34
    assert m["kappa"] == pytest.approx((0.7 - 0.34) / (1 - 0.34))
    forest = m["per_class"][0]
    assert forest == {"name": "forest", "code": 1, "precision": 0.75, "recall": 0.75, "f1": 0.75, "support": 4}
    assert m["per_class"][2]["precision"] == 1.0 and m["per_class"][2]["recall"] == pytest.approx(2 / 3)
    assert m["labels"] == ["forest", "river", "town"]


def test_a_class_never_predicted_has_no_precision_rather_than_a_crash():
    m = classification_metrics(np.array([1, 2, 3]), np.array([1, 1, 1]), CLASSES)
    assert m["per_class"][1]["precision"] is None and m["per_class"][1]["recall"] == 0.0


def test_regression_metrics_match_hand_computed_values():
    m = regression_metrics(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.5, 2.0, 2.5, 4.0]))
    assert m["rmse"] == pytest.approx(np.sqrt(0.5 / 4)) and m["mae"] == pytest.approx(0.25)
    assert m["r2"] == pytest.approx(1 - 0.5 / 5.0)
    assert regression_metrics(np.array([1.0]), np.array([2.0]))["r2"] is None
