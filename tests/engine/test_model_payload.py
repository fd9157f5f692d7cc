"""The payload of model files: every method of the catalogue goes through skops and comes back computing the
same values; the allowlist is exactly the types those pipelines hold; types outside it are found before
anything is built."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from engine import catalog
from engine.events import Reporter
from engine.fitting import apply_model, fit_model
from engine.ml import MlParams, make_pipeline
from engine.model_payload import (ALLOWED_TYPES, ESTIMATOR_TYPES, REBUILT, VALUE_TYPES, PayloadError, load_payload,
                                  payload_bytes, payload_types)

from ..fixtures import opener_payload

METHODS = [("reduction", m) for m in catalog.REDUCTION_METHODS] + [("cluster", m) for m in catalog.CLUSTER_METHODS] \
    + [("ml", m) for m in catalog.ML_METHODS]
#: Band counts that change which neighbour search the pipelines keep (trees below 16 features, brute force above)
BAND_COUNTS = (4, 20)


@pytest.fixture(scope="module")
def payloads():
    """(tool, method, bands) -> (fitted model, pixels, payload bytes), every method fitted on 150 tiny pixels."""
    fitted = {}
    for bands in BAND_COUNTS:
        values = np.random.default_rng(bands).normal(size=(150, bands)).astype(np.float32)
        for tool, method in METHODS:
            if tool == "ml":
                model = fit_ml(method, values, classes=2 if bands > 10 else 3)
            else:
                model, _ = fit_model(tool, method, {}, 3, 0, values, Reporter())
            fitted[tool, method, bands] = model, values, payload_bytes(model["pipeline"])
    return fitted


def fit_ml(method: str, values: np.ndarray, classes: int) -> dict:
    """An ml pipeline fitted on ``values``: ``classes`` classes for a classifier, a number for a regressor."""
    p = MlParams.from_dict({"INPUT": "in.tif", "OUTPUT": "out.tif", "TEMPLATE": "t.gpkg", "GT_COL": "c",
                            "METHOD": method})
    pipeline = make_pipeline(p)
    if method in catalog.ML_CLASSIFIERS:
        pipeline.fit(values, np.digitize(values[:, 0], np.quantile(values[:, 0], np.linspace(0, 1, classes + 1)[1:-1])))
    else:
        pipeline.fit(values, 2 * values[:, 0] + values[:, 1])
    return {"pipeline": pipeline, "estimator": pipeline[-1], "metadata": {"apply": "predict"}}


@pytest.mark.parametrize("tool, method", METHODS)
@pytest.mark.parametrize("bands", BAND_COUNTS)
def test_every_method_comes_back_computing_identical_values(payloads, tool, method, bands):
    model, values, data = payloads[tool, method, bands]
    types = payload_types(data)
    assert types <= ALLOWED_TYPES, sorted(types - ALLOWED_TYPES)
    pipeline = load_payload(data, types)
    assert [name for name, _ in pipeline.steps] == [name for name, _ in model["pipeline"].steps]
    assert type(pipeline[-1]) is type(model["pipeline"][-1])
    new_pixels = values[:40] * 1.1 + 0.05  # pixels the fit never saw
    for pixels in (values, new_pixels):
        np.testing.assert_array_equal(apply_model({"pipeline": pipeline, "metadata": model["metadata"]}, pixels),
                                      apply_model(model, pixels))


def test_the_allowlist_is_exactly_what_the_pipelines_hold(payloads):
    """Beyond plain values (numbers, arrays, containers), every listed class is one a method needs."""
    held = set().union(*(payload_types(data) for _, _, data in payloads.values()))
    assert held <= ALLOWED_TYPES, sorted(held - ALLOWED_TYPES)
    assert held - VALUE_TYPES == ESTIMATOR_TYPES, {"never used": sorted(ESTIMATOR_TYPES - held)}
    assert not any(t.startswith(("umap.", "pynndescent.", "numba.")) for t in held)  # rebuilt from data instead


def test_umap_and_birch_are_stored_as_data_and_rebuilt(payloads):
    assert set(REBUILT) == {"umap.umap_.UMAP", "sklearn.cluster._birch.Birch"}
    for method in ("UMAP", "Birch"):
        tool = "reduction" if method == "UMAP" else "cluster"
        _, _, data = payloads[tool, method, 4]
        schema = zipfile.ZipFile(io.BytesIO(data)).read("schema.json").decode()
        assert f'"__class__": "{method}"' not in schema  # no object of the class itself
    model, _, data = payloads["reduction", "UMAP", 4]
    umap = load_payload(data, payload_types(data))[-1]
    assert umap._input_distance_func is model["pipeline"][-1]._input_distance_func  # the same compiled function


def test_types_outside_the_allowlist_are_listed_from_the_schema_without_building_them(tmp_path):
    marker = tmp_path / "ran"
    opener = opener_payload(marker)
    assert payload_types(opener) == {"builtins.open", "builtins.tuple", "builtins.str"}
    assert not marker.exists()
    with pytest.raises(PayloadError, match="cannot be read .UntrustedTypesFoundException"):
        load_payload(opener, ALLOWED_TYPES)  # skops' own audit refuses it too
    assert not marker.exists()
    with pytest.raises(PayloadError, match="not a skops archive"):
        payload_types(b"garbage")
