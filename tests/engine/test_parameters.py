"""Parameter dataclasses generated from the contract: defaults, conversion and the checks they share."""

from __future__ import annotations

import dataclasses

import pytest

from engine.contract import TOOLS
from engine.encoder import EncoderParams
from engine.errors import ParameterError
from engine.parameters import destination_files, input_files, parameter_class
from engine.similarity import SimilarityParams


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_the_generated_class_has_one_field_per_parameter_with_the_contract_default(tool):
    cls = parameter_class(tool)
    fields = {f.name: f.default for f in dataclasses.fields(cls)}
    assert fields == {p.name: p.default for p in TOOLS[tool].parameters}


def test_values_are_converted_and_none_means_the_default():
    p = EncoderParams.from_dict({"INPUT": "in.tif", "OUTPUT": "out.tif", "SIZE": "32", "STRIDE": None,
                                 "PRETRAINED": "false", "BANDS": ["1", 2], "TARGET_RESOLUTION": 10, "UNKNOWN": 1})
    assert (p.SIZE, p.STRIDE, p.PRETRAINED, p.BANDS, p.TARGET_RESOLUTION) == (32, 32, False, [1, 2], 10.0)
    assert p.BATCH_SIZE == TOOLS["encoder"]["BATCH_SIZE"].default and not hasattr(p, "UNKNOWN")


@pytest.mark.parametrize("params, parameter, text", [
    ({"SIZE": 4}, "SIZE", "must be at least 8 (got 4)"),
    ({"SIZE": "big"}, "SIZE", "'big' is not a valid whole number"),
    ({"SIZE": 32.5}, "SIZE", "not a valid whole number"),
    ({"BATCH_SIZE": 0}, "BATCH_SIZE", "must be at least 1"),
    ({"DEVICE": "tpu"}, "DEVICE", "unknown value 'tpu' for encoder; choose one of auto, cpu, cuda"),
    ({"PRETRAINED": "maybe"}, "PRETRAINED", "not a valid true/false value"),
    ({"TARGET_RESOLUTION": float("nan")}, "TARGET_RESOLUTION", "not a finite number"),
    ({"BANDS": "1,2"}, "BANDS", "not a valid list of band numbers"),
    ({"STRIDE": 300, "SIZE": 224}, "STRIDE", "must be between 1 and SIZE"),
])
def test_bad_values_name_the_parameter(params, parameter, text):
    with pytest.raises(ParameterError) as info:
        EncoderParams.from_dict({"INPUT": "in.tif", "OUTPUT": "out.tif", **params})
    assert info.value.parameter == parameter and text in str(info.value)


def test_bounds_from_the_contract_apply_to_every_tool():
    with pytest.raises(ParameterError, match="RANDOM_SAMPLES: must be at most 100000"):
        SimilarityParams.from_dict({"INPUT": "a.tif", "TEMPLATE": "t.gpkg", "OUTPUT": "o.tif",
                                    "RANDOM_SAMPLES": 2_000_000})
    with pytest.raises(ParameterError, match=r"RANDOM_SEED: must be at most 2147483647 \(got 4294967296\)"):
        SimilarityParams.from_dict({"INPUT": "a.tif", "TEMPLATE": "t.gpkg", "OUTPUT": "o.tif", "RANDOM_SEED": 2**32})


def test_input_and_destination_files_come_from_the_parameter_kinds():
    p = SimilarityParams.from_dict({"INPUT": "a.tif", "TEMPLATE": "t.gpkg", "OUTPUT": "o.tif", "OUTPUT_POINTS": ""})
    assert input_files("similarity", p) == {"INPUT": "a.tif", "TEMPLATE": "t.gpkg"}
    assert destination_files("similarity", p) == {"OUTPUT": "o.tif"}
