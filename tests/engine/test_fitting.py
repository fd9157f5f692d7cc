"""Fitting on a pixel sample: capped samples for quadratic methods, errors named after their parameter, the
nearest-neighbour stand-in of transductive methods, and the figures of the fit."""

from __future__ import annotations

import numpy as np
import pytest

from engine import catalog
from engine.errors import ParameterError
from engine.estimator_run import estimator_params
from engine.events import Reporter
from engine.fitting import apply_model, estimator_errors, fit_figures, fit_model, fit_sample_limit


def test_unknown_method_and_a_value_the_estimator_refuses():
    with pytest.raises(ParameterError, match="METHOD: unknown method 'KMean' for cluster; choose one of KMeans"):
        estimator_params({"INPUT": "x.tif", "OUTPUT": "y.tif", "METHOD": "KMean"}, "cluster")
    values = np.random.default_rng(0).normal(size=(200, 4)).astype(np.float32)
    with pytest.raises(ParameterError, match="SK_PARAM: KMeans failed: .*n_init"):
        fit_model("cluster", "KMeans", {"n_init": -1}, 3, 0, values, Reporter())
    with pytest.raises(ParameterError, match="N_COMPONENTS: PCA failed: .*n_components=9"):
        fit_model("reduction", "PCA", {}, 9, 0, values, Reporter())
    with pytest.raises(ParameterError, match="N_CLUSTERS: GaussianMixture failed: .*n_components = 300"):
        fit_model("cluster", "GaussianMixture", {}, 300, 0, values[:200], Reporter())


def test_what_the_estimator_warns_of_is_said_and_an_ml_estimator_refusing_a_value_names_sk_param():
    reporter = Reporter()
    fit_model("cluster", "KMeans", {}, 8, 0, np.ones((100, 3), np.float32), reporter)  # one distinct pixel
    assert [e["message"] for e in reporter.events if e["type"] == "warning"] == [
        "KMeans: Number of distinct clusters (1) found smaller than n_clusters (8). Possibly due to duplicate points "
        "in X."]
    with pytest.raises(ParameterError, match="SK_PARAM: RandomForestClassifier failed: The 'n_estimators'"), \
            estimator_errors("ml", "RandomForestClassifier"):
        raise ValueError("The 'n_estimators' parameter of RandomForestClassifier must be an int in the range [1, "
                         "inf). Got 0 instead.")


def test_too_many_clusters_is_blamed_on_n_clusters_not_sk_param():
    values = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    with pytest.raises(ParameterError, match="N_CLUSTERS: KMeans failed: .*n_clusters=60"):
        fit_model("cluster", "KMeans", {}, 60, 0, values, Reporter())


def test_quadratic_methods_fit_on_a_capped_sample_and_say_so():
    reporter = Reporter()
    assert fit_sample_limit("SpectralClustering", 100_000, 8, reporter) == \
        catalog.FIT_SAMPLE_LIMITS["SpectralClustering"]
    assert "fitted on 10000 of the SAMPLE_SIZE=100000 pixels" in reporter.events[-1]["message"]
    assert fit_sample_limit("KMeans", 100_000, 384, reporter) == 100_000
    assert fit_sample_limit("HDBSCAN", 100_000, 16, reporter) == 100_000
    assert fit_sample_limit("HDBSCAN", 100_000, 384, reporter) == 20_000
    assert "reduce the bands first with iamap:reduction" in reporter.events[-2]["message"]


@pytest.mark.parametrize("tool, method, stand_in", [("reduction", "TSNE", "KNeighborsRegressor"),
                                                    ("cluster", "AgglomerativeClustering", "KNeighborsClassifier")])
def test_transductive_methods_get_a_nearest_neighbour_stand_in_that_gives_the_fit_back(tool, method, stand_in):
    values = np.random.default_rng(1).normal(size=(120, 4)).astype(np.float32)
    reporter = Reporter()
    model, output = fit_model(tool, method, {}, 2, 0, values, reporter)
    assert type(model["pipeline"][-1]).__name__ == stand_in and model["metadata"]["apply"] == "predict"
    np.testing.assert_allclose(apply_model(model, values), output, atol=1e-6)  # distance weights: exact on the sample
    assert any(f"{method} cannot handle pixels outside the fitted sample" in e.get("message", "")
               for e in reporter.events)


def test_hdbscan_labels_new_pixels_through_approximate_predict_and_gets_sample_defaults():
    rng = np.random.default_rng(2)
    values = np.concatenate([rng.normal(0, 0.1, (200, 3)), rng.normal(5, 0.1, (200, 3))]).astype(np.float32)
    reporter = Reporter()
    model, labels = fit_model("cluster", "HDBSCAN", {"min_samples": 5}, 8, 0, values, reporter)
    assert model["metadata"]["apply"] == "approximate_predict"
    assert model["estimator"].min_cluster_size == 5 and model["estimator"].min_samples == 5  # SK_PARAM kept
    assert "HDBSCAN defaults of IAMAP: {'min_cluster_size': 5}" in " ".join(e.get("message", "")
                                                                              for e in reporter.events)
    assert len(set(labels[:200])) == len(set(labels[200:])) == 1 and labels[0] != labels[-1]
    np.testing.assert_array_equal(apply_model(model, values[[0, -1]] + 0.01), labels[[0, -1]])


def test_fit_figures_of_each_kind_of_output():
    values = np.random.default_rng(3).normal(size=(100, 5)).astype(np.float32)
    model, embedding = fit_model("reduction", "PCA", {}, 2, 0, values, Reporter())
    figures = fit_figures("reduction", model, values, embedding)
    assert figures["output_count"] == 2 and len(figures["explained_variance_ratio"]) == 2
    model, labels = fit_model("cluster", "KMeans", {"n_init": 1}, 3, 0, values, Reporter())
    figures = fit_figures("cluster", model, values, labels)
    assert figures == {"inertia": pytest.approx(model["estimator"].inertia_), "max_label": 2,
                       "clusters_in_sample": 3, "noise_in_sample": 0}
