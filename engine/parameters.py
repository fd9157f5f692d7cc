"""The engine's parameter dataclasses, generated from :mod:`engine.contract`, and the checks every tool shares.

``parameter_class("encoder")`` is a dataclass with one field per parameter id of the tool, defaulting to the
contract's default. Its ``from_dict`` reads the worker's JSON parameters: unknown keys are ignored (QGIS may
send more), ``None`` means "use the default", values are converted by kind and checked against the
contract's choices and bounds, each failure a :class:`~engine.errors.ParameterError` naming the parameter.
A tool subclasses the generated class to add its own checks in :meth:`ToolParameters.check`::

    class EncoderParams(parameter_class("encoder")):
        def check(self): ...
"""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path

from .contract import DESTINATION_KINDS, INPUT_FILE_KINDS, LAYER_NAMES, TOOLS, Kind, Parameter
from .errors import ParameterError
from .scheduler import check_scheduler


class ToolParameters:
    """Base of the generated dataclasses: ``from_dict`` and the hook for a tool's own checks."""

    TOOL = ""

    @classmethod
    def from_dict(cls, params: dict):
        values = {}
        for spec in TOOLS[cls.TOOL].parameters:
            value = params.get(spec.name)
            values[spec.name] = spec.default if value is None else convert(spec, value, cls.TOOL)
        instance = cls(**values)
        instance.layer_names = {str(k): str(v) for k, v in (params.get(LAYER_NAMES) or {}).items() if v}
        instance.check()
        if getattr(instance, "SCHEDULER", ""):  # unreachable: fail now, before any work
            instance.SCHEDULER = check_scheduler(instance.SCHEDULER)
        return instance

    def check(self) -> None:
        """Checks that involve several parameters or the tool's own rules; subclasses extend it."""

    def shown(self, name: str) -> str:
        """How messages and reports name the file of parameter ``name``: the layer as the user chose it, when
        the QGIS side said (see :data:`engine.contract.LAYER_NAMES`), else the file's name."""
        names = getattr(self, "layer_names", {})
        return names.get(name) or Path(str(getattr(self, name) or "")).name

    def shown_values(self) -> dict:
        """Every parameter's value, the vector layers named as :meth:`shown` names them (a report's table)."""
        names = getattr(self, "layer_names", {})
        return {name: names.get(name, getattr(self, name)) for name in self.__dataclass_fields__}


@functools.cache
def parameter_class(tool: str) -> type:
    """The dataclass of ``tool``'s parameters (fields named by id, contract defaults)."""
    fields = [(spec.name, object, dataclasses.field(default=spec.default)) for spec in TOOLS[tool].parameters]
    name = "".join(part.title() for part in tool.split("_")) + "ParametersBase"
    return dataclasses.make_dataclass(name, fields, bases=(ToolParameters,), namespace={"TOOL": tool})


def convert(spec: Parameter, value, tool: str = ""):
    """``value`` as the engine uses it for a parameter of ``spec``'s kind, checked against the contract."""
    try:
        converted = _CONVERTERS[spec.kind](value)
    except (TypeError, ValueError):
        raise ParameterError(spec.name, f"{value!r} is not a valid {_KIND_NAMES.get(spec.kind, spec.kind.value)}."
                             ) from None
    if spec.kind is Kind.ENUM and converted not in spec.choices:
        noun = "method" if spec.name.endswith("METHOD") else "value"
        raise ParameterError(spec.name, f"unknown {noun} {converted!r}{f' for {tool}' if tool else ''}; choose one of "
                                        f"{', '.join(spec.choices)}.")
    if spec.kind in (Kind.INT, Kind.FLOAT):
        if not math.isfinite(converted):
            raise ParameterError(spec.name, f"{value!r} is not a finite number.")
        minimum, maximum = spec.bounds
        if minimum is not None and converted < minimum:
            raise ParameterError(spec.name, f"must be at least {_number(minimum)} (got {_number(converted)}).")
        if maximum is not None and converted > maximum:
            raise ParameterError(spec.name, f"must be at most {_number(maximum)} (got {_number(converted)}).")
    return converted


def _number(value: float) -> str:
    """A bound or value as a message shows it: whole numbers in full (2147483647, not 2.14748e+09)."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


def _int(value) -> int:
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number")
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            value = float(text)  # "224.0" (a dialog's or a model's text) is a whole number; "2.5" is not
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("not a whole number")
        return int(value)
    return int(value)


def parse_bool(value) -> bool:
    """A boolean as scripts and the command line give it: True/False, 1/0, "true"/"false", "yes"/"no", "on"/"off"
    ("" is False); ValueError otherwise."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(text)


def _list_of(convert_item):
    def converter(value):
        if isinstance(value, (str, bytes)):
            raise TypeError("a list is needed")
        return [convert_item(v) for v in value]
    return converter


_CONVERTERS = {
    Kind.RASTER: str, Kind.RASTERS: _list_of(str), Kind.VECTOR: str, Kind.FIELD: str, Kind.FILE: str,
    Kind.STRING: str, Kind.ENUM: str, Kind.CRS: str,
    Kind.RASTER_DESTINATION: str, Kind.VECTOR_DESTINATION: str, Kind.FILE_DESTINATION: str,
    Kind.INT: _int, Kind.FLOAT: float, Kind.BOOL: parse_bool,
    Kind.BANDS: _list_of(_int), Kind.EXTENT: _list_of(float),
}
_KIND_NAMES = {Kind.INT: "whole number", Kind.FLOAT: "number", Kind.BOOL: "true/false value",
               Kind.BANDS: "list of band numbers", Kind.EXTENT: "extent [xmin, ymin, xmax, ymax]"}


#: Between a list parameter's id and a file's place in the list, in the ids of :func:`_files` ("LATER #2").
LIST_PLACE = " #"


def _files(tool: str, params, kinds) -> dict[str, str]:
    """The non-empty values of ``tool``'s parameters of ``kinds``, by id, from a parameter dataclass or the
    worker's raw parameter dict."""
    values = params if isinstance(params, dict) else vars(params)
    files = {}
    for p in TOOLS[tool].parameters:
        value = values.get(p.name)
        if p.kind not in kinds or value in (None, ""):
            continue
        if isinstance(value, (list, tuple)):  # a list of rasters: each file by its place in the list
            files.update({f"{p.name}{LIST_PLACE}{number}": str(item) for number, item in enumerate(value, start=1)})
        else:
            files[p.name] = str(value)
    return files


def parameter_of(file_id: str) -> str:
    """The parameter of a file id of :func:`input_files` / :func:`destination_files` ("LATER #2": LATER)."""
    return file_id.split(LIST_PLACE)[0]


def input_files(tool: str, params) -> dict[str, str]:
    """The files a run of ``tool`` reads, by parameter id (empty values left out)."""
    return _files(tool, params, INPUT_FILE_KINDS)


def destination_files(tool: str, params) -> dict[str, str]:
    """The files a run of ``tool`` writes, by parameter id (empty values left out)."""
    return _files(tool, params, DESTINATION_KINDS)
