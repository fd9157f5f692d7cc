"""The table of IAMAP 1.0.2's parameters: its lists really are 1.0.2's, every entry leads to a real parameter."""

from __future__ import annotations

import inspect

import pytest

from engine import catalog
from engine.contract import TOOLS
from engine.legacy_parameters import (BACKBONE_OPT_VALUES, CLUSTER_METHODS_1_0_2, LEGACY, LEGACY_DEFAULTS,
                                      ML_METHODS_1_0_2, REDUCTION_METHODS_1_0_2, Alias, Refused)


def _estimators(module, required: tuple) -> list:
    """The rule 1.0.2 built its METHOD lists with: public estimators of ``module`` having ``required``, by name."""
    from sklearn.base import BaseEstimator

    return [name for name, cls in inspect.getmembers(module, inspect.isclass)
            if issubclass(cls, BaseEstimator) and not name.startswith("_") and all(hasattr(cls, m) for m in required)]


def test_method_lists_are_those_1_0_2_builds_with_the_pinned_scikit_learn():
    from sklearn import cluster, decomposition, ensemble, manifold, neighbors

    reduction = (_estimators(decomposition, ("fit", "transform")) + _estimators(cluster, ("fit", "transform"))
                 + _estimators(manifold, ("fit", "fit_transform")) + ["UMAP"])
    assert tuple(reduction) in REDUCTION_METHODS_1_0_2
    assert tuple(_estimators(cluster, ("fit", "fit_predict"))) in CLUSTER_METHODS_1_0_2
    assert tuple(sorted(_estimators(ensemble, ("fit", "predict")) + _estimators(neighbors, ("fit", "predict")))) \
        in ML_METHODS_1_0_2


def test_1_0_2_default_methods_sit_where_1_0_2_put_its_default_index():
    # 1.0.2's defaults were PCA, KMeans and RandomForestClassifier, found by name in its lists
    assert {order.index("PCA") for order in REDUCTION_METHODS_1_0_2} == {10}
    assert CLUSTER_METHODS_1_0_2[0].index("KMeans") == 7
    assert ML_METHODS_1_0_2[0].index("RandomForestClassifier") == 17


@pytest.mark.parametrize("tool", sorted(LEGACY))
def test_every_alias_leads_to_a_parameter_of_today_and_no_1_0_2_name_shadows_one(tool):
    for entry in LEGACY[tool]:
        assert entry.name not in TOOLS[tool].names, entry.name
        if isinstance(entry, Alias):
            assert entry.becomes in TOOLS[tool].names, entry
            for value in entry.values.values():
                if isinstance(value, dict):
                    assert set(value) <= set(TOOLS[tool].names), value
                elif not isinstance(value, Refused):
                    assert value in TOOLS[tool][entry.becomes].choices, value
    for name, value in LEGACY_DEFAULTS[tool].items():
        spec = TOOLS[tool][name]
        assert not spec.choices or value in spec.choices, (name, value)


def test_backbones_are_curated_keys_or_timm_names_that_exist():
    import timm

    for value in BACKBONE_OPT_VALUES.values():
        if isinstance(value, Refused):
            continue
        if "BACKBONE" in value:
            assert value["BACKBONE"] in catalog.BACKBONE_KEYS
        else:
            assert timm.is_model(value["BACKBONE_NAME"]), value


def test_the_migration_page_names_every_1_0_2_parameter_of_every_tool():
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "migration.md").read_text(encoding="utf-8")
    for tool, table in LEGACY.items():
        for entry in table:
            assert f"`{entry.name}`" in page, (tool, entry.name)
            if isinstance(entry, Alias):
                assert f"`{entry.becomes}`" in page, (tool, entry.becomes)
