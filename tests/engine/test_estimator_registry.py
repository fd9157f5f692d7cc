"""The tool specs, the estimator class behind each METHOD, SK_PARAM parsing and building estimators."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from engine import catalog
from engine.contract import TOOLS
from engine.errors import ParameterError
from engine.estimator_registry import (APPLY_OVERRIDES, ESTIMATOR_SPECS, build_estimator, estimator_class,
                                       library_versions,
                                       parse_sk_params)

ENGINE = Path(__file__).resolve().parents[2] / "engine"


@pytest.mark.parametrize("tool", ["reduction", "cluster"])
def test_every_catalogued_method_exists_and_the_transductive_lists_are_right(tool):
    spec = ESTIMATOR_SPECS[tool]
    assert spec.methods == {"reduction": catalog.REDUCTION_METHODS, "cluster": catalog.CLUSTER_METHODS}[tool]
    for method in spec.methods:
        cls = estimator_class(tool, method)
        assert cls.__name__ == method and hasattr(cls, "fit")
        can_map_new_pixels = hasattr(cls, spec.apply)  # transform (reduction) or predict (cluster)
        if method in APPLY_OVERRIDES:  # HDBSCAN: no predict, labelled through hdbscan.approximate_predict
            assert not can_map_new_pixels and method not in spec.transductive
        else:
            assert can_map_new_pixels == (method not in spec.transductive), method


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
    umap = build_estimator("reduction", "UMAP", {"n_components": 2}, 2, 0)  # the same number twice: no conflict
    assert umap.n_components == 2 and umap.force_approximation_algorithm  # transform has an index
    assert build_estimator("cluster", "HDBSCAN", {"prediction_data": False}, 8, 0).prediction_data is True


@pytest.mark.parametrize("tool, method, keyword, size", [
    ("reduction", "PCA", "n_components", "N_COMPONENTS"), ("cluster", "KMeans", "n_clusters", "N_CLUSTERS"),
    ("cluster", "GaussianMixture", "n_components", "N_CLUSTERS"),
])
def test_a_size_in_sk_param_that_contradicts_the_size_parameter_is_refused_naming_both(tool, method, keyword, size):
    with pytest.raises(ParameterError) as info:
        build_estimator(tool, method, {keyword: 5}, 2, 0)
    assert info.value.parameter == "SK_PARAM"
    assert f"SK_PARAM: {keyword} = 5 conflicts with {size} = 2 (\u201c{TOOLS[tool][size].label}\u201d)" in \
        str(info.value) and f"remove {keyword} from SK_PARAM and set {size}" in str(info.value)


def test_model_versions_name_the_libraries_whose_objects_the_model_holds():
    assert {"scikit-learn", "numpy", "skops", "iamap", "python"} <= set(library_versions("KMeans"))
    assert "umap-learn" not in library_versions("KMeans")
    assert {"umap-learn", "pynndescent"} <= set(library_versions("UMAP"))
    assert "hdbscan" in library_versions("HDBSCAN")


def test_no_engine_module_of_the_estimator_layer_compares_tool_names():
    """Tools differ by their spec, never by ``tool == "..."``: a new tool is a new spec."""
    names = set(ESTIMATOR_SPECS)
    for module in ("estimator_registry", "fitting", "estimator_run", "model_files", "model_payload", "reduction",
                   "cluster"):
        tree = ast.parse((ENGINE / f"{module}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                constants = {c.value for c in [node.left, *node.comparators] if isinstance(c, ast.Constant)}
                assert not constants & names, f"engine/{module}.py:{node.lineno} compares a tool name"


def test_the_size_parameter_is_the_one_the_contract_declares():
    from engine.contract import TOOLS

    assert {name: spec.size_parameter for name, spec in ESTIMATOR_SPECS.items()} == {
        "reduction": "N_COMPONENTS", "cluster": "N_CLUSTERS", "ml": ""}
    for name, spec in ESTIMATOR_SPECS.items():
        assert spec.size_parameter == TOOLS[name].size_parameter
        assert not spec.size_parameter or TOOLS[name][spec.size_parameter].kind.value == "int"
