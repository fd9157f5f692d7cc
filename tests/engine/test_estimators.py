"""Building estimators from METHOD and SK_PARAM, and saving/loading models with their checked record."""

from __future__ import annotations

import joblib
import numpy as np
import pytest

from engine import catalog
from engine.errors import ParameterError
from engine.estimators import (EstimatorParams, build_estimator, estimator_class, fit_model, fit_sample_limit,
                               library_versions, load_model, parse_sk_params, save_model)
from engine.events import Reporter


@pytest.mark.parametrize("tool", ["reduction", "cluster"])
def test_every_catalogued_method_exists_and_the_transductive_lists_are_right(tool):
    for method in catalog.REDUCTION_METHODS if tool == "reduction" else catalog.CLUSTER_METHODS:
        cls = estimator_class(tool, method)
        assert cls.__name__ == method and hasattr(cls, "fit")
        can_map_new_pixels = hasattr(cls, "transform") if tool == "reduction" else hasattr(cls, "predict")
        transductive = catalog.REDUCTION_TRANSDUCTIVE if tool == "reduction" else catalog.CLUSTER_TRANSDUCTIVE
        if method == "HDBSCAN":  # no predict: labelled through hdbscan.approximate_predict
            assert not can_map_new_pixels and method not in transductive
        else:
            assert can_map_new_pixels == (method not in transductive), method


def test_unknown_keyword_is_an_error_listing_the_valid_ones():
    with pytest.raises(ParameterError) as error:
        build_estimator("cluster", "KMeans", {"n_cluster": 3}, 8, 0)
    message = str(error.value)
    assert message.startswith("SK_PARAM: KMeans has no parameter 'n_cluster'")
    assert "n_clusters" in message and "max_iter" in message


def test_sk_param_must_be_a_json_object():
    assert parse_sk_params('{"max_iter": 5}') == {"max_iter": 5} and parse_sk_params("") == {}
    with pytest.raises(ParameterError, match="SK_PARAM: not valid JSON"):
        parse_sk_params("{max_iter: 5}")
    with pytest.raises(ParameterError, match="SK_PARAM: must be a JSON object"):
        parse_sk_params("[1, 2]")


def test_size_seed_and_sk_param_reach_the_estimator():
    kmeans = build_estimator("cluster", "KMeans", {"max_iter": 7}, 5, 3)
    assert (kmeans.n_clusters, kmeans.random_state, kmeans.max_iter) == (5, 3, 7)
    assert build_estimator("cluster", "GaussianMixture", {}, 4, 0).n_components == 4
    umap = build_estimator("reduction", "UMAP", {"n_components": 2}, 3, 0)
    assert umap.n_components == 2 and umap.force_approximation_algorithm  # SK_PARAM wins; transform has an index
    assert build_estimator("cluster", "HDBSCAN", {}, 8, 0).prediction_data is True


def test_unknown_method_and_a_value_the_estimator_refuses():
    with pytest.raises(ParameterError, match="METHOD: unknown method 'KMean' for cluster; choose one of KMeans"):
        EstimatorParams.from_dict({"INPUT": "x.tif", "OUTPUT": "y.tif", "METHOD": "KMean"}, "cluster")
    values = np.random.default_rng(0).normal(size=(200, 4)).astype(np.float32)
    with pytest.raises(ParameterError, match="SK_PARAM: KMeans failed: .*n_init"):
        fit_model("cluster", "KMeans", {"n_init": -1}, 3, 0, values, Reporter())
    with pytest.raises(ParameterError, match="N_COMPONENTS: PCA failed: .*n_components=9"):
        fit_model("reduction", "PCA", {}, 9, 0, values, Reporter())
    with pytest.raises(ParameterError, match="N_CLUSTERS: GaussianMixture failed: .*n_components = 300"):
        fit_model("cluster", "GaussianMixture", {}, 300, 0, values[:200], Reporter())


def test_quadratic_methods_fit_on_a_capped_sample_and_say_so():
    reporter = Reporter()
    assert fit_sample_limit("SpectralClustering", 100_000, 8, reporter) == \
        catalog.FIT_SAMPLE_LIMITS["SpectralClustering"]
    assert "fitted on 10000 of the SAMPLE_SIZE=100000 pixels" in reporter.events[-1]["message"]
    assert fit_sample_limit("KMeans", 100_000, 384, reporter) == 100_000
    assert fit_sample_limit("HDBSCAN", 100_000, 16, reporter) == 100_000
    assert fit_sample_limit("HDBSCAN", 100_000, 384, reporter) == 20_000
    assert "reduce the bands first with iamap:reduction" in reporter.events[-2]["message"]


def fitted(tool="cluster", method="KMeans", bands=4):
    values = np.random.default_rng(0).normal(size=(300, bands)).astype(np.float32)
    model, _ = fit_model(tool, method, {}, 3, 0, values, Reporter())
    model["metadata"].update(tool=tool, method=method, bands=list(range(1, bands + 1)), band_count=bands,
                             input="in.tif", versions=library_versions(method))
    return model, values


def test_saved_model_loads_and_gives_the_same_labels(tmp_path):
    model, values = fitted()
    path = save_model(model, str(tmp_path / "m.joblib"))
    assert not (tmp_path / "m.joblib.tmp").exists()
    loaded = load_model(str(path), "cluster", 4)
    np.testing.assert_array_equal(loaded["pipeline"].predict(values), model["pipeline"].predict(values))
    with pytest.raises(ParameterError, match="SAVE_MODEL: m.pickle: give a file name ending in .joblib"):
        save_model(model, str(tmp_path / "m.pickle"))


def test_loading_refuses_another_tool_another_version_other_bands_and_foreign_files(tmp_path):
    model, _ = fitted()
    path = str(save_model(model, str(tmp_path / "m.joblib")))
    with pytest.raises(ParameterError, match="LOAD_MODEL: m.joblib is a cluster model .KMeans.; load it in "
                                             "iamap:cluster, not iamap:reduction"):
        load_model(path, "reduction", 4)
    with pytest.raises(ParameterError, match=r"BANDS: the model in m.joblib was fitted on 4 band\(s\) \(bands "
                                             r"\[1, 2, 3, 4\] of in.tif\); the selected input has 3"):
        load_model(path, "cluster", 3)
    model["metadata"]["versions"]["scikit-learn"] = "0.24.2"
    old = str(save_model(model, str(tmp_path / "old.joblib")))
    with pytest.raises(ParameterError, match="LOAD_MODEL: old.joblib was saved with scikit-learn 0.24.2; this IAMAP "
                                             "environment has scikit-learn 1.*Fit the model again"):
        load_model(old, "cluster", 4)
    joblib.dump([1, 2, 3], tmp_path / "list.joblib")
    with pytest.raises(ParameterError, match="LOAD_MODEL: list.joblib is not an IAMAP model file"):
        load_model(str(tmp_path / "list.joblib"), "cluster", 4)
    (tmp_path / "text.joblib").write_text("hello")
    with pytest.raises(ParameterError, match="LOAD_MODEL: cannot read text.joblib as an IAMAP model"):
        load_model(str(tmp_path / "text.joblib"), "cluster", 4)
    with pytest.raises(ParameterError, match="LOAD_MODEL: .*missing.joblib does not exist"):
        load_model(str(tmp_path / "missing.joblib"), "cluster", 4)
