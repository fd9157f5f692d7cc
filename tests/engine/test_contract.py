"""The contract shared by the QGIS side and the engine: complete and consistent (stdlib only: test_imports.py)."""

from __future__ import annotations

import pytest

from engine import catalog, contract
from engine.contract import TOOLS, Kind
from engine.worker import ENTRY_POINTS


def test_every_worker_tool_but_the_test_tool_has_a_contract_entry():
    assert set(ENTRY_POINTS) - {"sleep"} == set(TOOLS)


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_parameters_are_complete_and_consistent(tool):
    spec = TOOLS[tool]
    assert len(set(spec.names)) == len(spec.names), "duplicate parameter ids"
    for parameter in spec.parameters:
        assert parameter.name.isupper() and parameter.label and parameter.help, parameter.name
        if parameter.kind is Kind.ENUM:
            assert parameter.choices and parameter.default in parameter.choices, parameter.name
        if parameter.kind is Kind.BANDS:
            assert spec[parameter.parent].kind is Kind.RASTER
        if parameter.kind in (Kind.INT, Kind.FLOAT) and parameter.default is not None:
            assert parameter.minimum is None or parameter.default >= parameter.minimum, parameter.name
            assert parameter.maximum is None or parameter.default <= parameter.maximum, parameter.name
        if not parameter.optional and parameter.kind in contract.INPUT_FILE_KINDS + contract.DESTINATION_KINDS:
            assert parameter.default is None, f"{parameter.name}: a required file has no default"


def test_enums_come_from_the_catalog():
    assert contract.ENCODER["BACKBONE"].choices == catalog.BACKBONE_KEYS
    assert contract.ENCODER["DEVICE"].choices == contract.SIMILARITY["DEVICE"].choices == catalog.DEVICES
    assert contract.REDUCTION["METHOD"].choices == catalog.REDUCTION_METHODS
    assert contract.CLUSTER["METHOD"].choices == catalog.CLUSTER_METHODS


def test_event_kinds_are_the_strings_on_the_wire():
    assert [kind.value for kind in contract.EventKind] == ["progress", "text", "warning", "error", "result"]
    assert contract.EventKind("progress") == "progress"


def test_help_texts_get_the_default_of_a_number_from_its_declaration():
    for tool in TOOLS.values():
        for parameter in tool.parameters:
            assert "(default " not in parameter.help and "default 5" not in parameter.help, parameter.name
            if parameter.kind in (Kind.INT, Kind.FLOAT) and parameter.default is not None:
                assert parameter.help_text.endswith(f" Default: {parameter.default:g}.")
    assert TOOLS["encoder"]["SIZE"].help_text.endswith("Default: 224.")
    assert TOOLS["cluster"]["N_CLUSTERS"].help_text.endswith("Default: 8.")


def test_help_texts_give_the_allowed_range_of_a_bounded_number():
    assert TOOLS["encoder"]["SIZE"].help_text.endswith("Allowed: 8 or more. Default: 224.")
    assert TOOLS["encoder"]["STRIDE"].help_text.endswith("Allowed: 1 or more.")
    for tool in TOOLS.values():
        for parameter in tool.parameters:
            if parameter.minimum is not None or parameter.maximum is not None:
                assert f"Allowed: {parameter.allowed_range}." in parameter.help_text
