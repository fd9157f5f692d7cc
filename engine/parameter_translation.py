"""The one normalisation step a run's parameters go through before anything reads them, on the QGIS side
(:class:`utils.algorithm.IamapAlgorithm`) and in the ``iamap`` command (:mod:`engine.cli`), so both read a
script alike:

- IAMAP 1.0.2's names and values (:mod:`engine.legacy_parameters`) read as today's, each with one warning naming
  today's parameter; a 1.0.2 parameter with no equivalent ignored with a warning when it cannot change the
  result, refused otherwise; an ``OUTPUT`` folder (1.0.2's convention) given the file 1.0.2 wrote in it;
- an enum given as a number read as the choice it numbers: in today's order (the one ``qgis_process help``
  shows), except for a name 1.0.2 shared with another order (MERGE_METHOD, METHOD) in a 1.0.2 call;
- a name that no version of the tool knows reported in a warning (QGIS itself drops such names silently).

Standard library only (QGIS's Python imports it).
"""

from __future__ import annotations

import ast
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable

from .contract import TOOLS, Kind
from .errors import ParameterError
from .legacy_parameters import (LEGACY_DEFAULTS, MERGE_METHOD_VALUES, MODEL_FILE_NAME, OUTPUT_FILE_NAMES,
                                SAVE_MODEL_TOOLS, SHARED_ENUM_ORDERS, Alias, Refused, entries)
from .parameters import parse_bool


@dataclass
class Translation:
    """Parameters with today's names and values, the warnings to log (each once), and whether the call was
    recognised as written for IAMAP 1.0.2."""

    params: dict
    warnings: list = field(default_factory=list)
    legacy: bool = False


def legacy_names(tool: str) -> tuple:
    """The 1.0.2 ids of ``tool`` that are not today's ids (the QGIS side declares them as hidden parameters)."""
    return tuple(entries(tool))


def translate(tool: str, params: dict, input_stem: Callable[[], str] | None = None) -> Translation:
    """``params`` of ``tool`` as today's parameters; see the module docstring.

    ``input_stem`` gives the input raster's file name without extension, for 1.0.2's output names (default: the
    stem of ``params["INPUT"]``). Raises :class:`~engine.errors.ParameterError` where a value cannot be honoured.
    """
    spec, old = TOOLS[tool], entries(tool)
    result = Translation({k: v for k, v in params.items() if k in spec.names}, legacy=is_legacy_call(tool, params))
    for name in params:
        if name in old:
            _apply(tool, old[name], params, result)
        elif name not in spec.names:
            result.warnings.append(f"{name} is not a parameter of iamap:{tool} (nor of IAMAP 1.0.2's): it was "
                                   f"ignored. Check its spelling; iamap:{tool} takes {', '.join(spec.names)}.")
    out = result.params
    if result.legacy:
        _legacy_defaults(tool, params, result)
    if "CV" not in params and out.get("CV") == "kfold" and out.get("FOLD_COL"):
        out["CV"] = "column"  # 1.0.2's cross-validation took its folds from FOLD_COL when it was given
    _enum_indices(tool, result)
    _sk_param_literal(result)
    folder = _output_folder(tool, params, result, input_stem)
    _save_model_checkbox(tool, params, result, folder)
    _pickle_with_saved_twin(result)
    return result


def is_legacy_call(tool: str, params: dict) -> bool:
    """Whether ``params`` were written for IAMAP 1.0.2: a 1.0.2-only name, SAVE_MODEL as a checkbox or an
    ``OUTPUT`` folder."""
    return (any(name in entries(tool) for name in params) or _is_checkbox(params.get("SAVE_MODEL"))
            or _is_folder(params.get("OUTPUT"), tool, legacy=False))


def _apply(tool: str, entry, params: dict, result: Translation) -> None:
    name, value = entry.name, params[entry.name]
    if not isinstance(entry, Alias):  # Dropped
        if entry.harmless is None or _is_among(value, entry.harmless):
            result.warnings.append(f"{name} (IAMAP 1.0.2) has no equivalent and was ignored: {entry.why}.")
            return
        raise ParameterError(name, f"IAMAP 1.0.2's {name}={value!r} has no equivalent here and would change the "
                                   f"result: {entry.why}. Remove {name} to run.")
    if name == "BACKBONE_OPT" and any(params.get(other) not in (None, "", "NULL")
                                      for other in ("BACKBONE_CHOICE", "BACKBONE_NAME")):
        result.warnings.append("BACKBONE_OPT (IAMAP 1.0.2) was not used: BACKBONE_CHOICE or BACKBONE_NAME names "
                               "the model, as in 1.0.2.")
        return
    if value in (None, "") or (value == "NULL" and not entry.values):
        result.warnings.append(f"{name} is IAMAP 1.0.2's name of {entry.becomes} (left empty here); write "
                               f"{entry.becomes} in new scripts.")
        return
    mapped = _lookup(entry, value)
    values = mapped if isinstance(mapped, dict) else {entry.becomes: mapped}
    for new, new_value in values.items():
        given = params.get(new)
        if given not in (None, "") and str(given) != str(new_value):
            raise ParameterError(name, f"{name} (IAMAP 1.0.2's name) and {new} are both given, with different "
                                       f"values ({value!r}, {given!r}); give only {new}.")
        result.params[new] = new_value
    shown = ", ".join(f"{k}={v!r}" for k, v in values.items())
    result.warnings.append(f"{name}={value!r} is IAMAP 1.0.2's parameter: read as {shown}; write "
                           f"{' and '.join(values)} in new scripts (docs/migration.md).")


def _lookup(entry: Alias, value):
    """Today's value of a 1.0.2 ``value`` of ``entry`` (raises on a refused or unknown one)."""
    if not entry.values:
        return value
    try:
        key = _as_index(value) if entry.kind == "index" else parse_bool(value) if entry.kind == "bool" else value
    except ValueError:
        key = None
    if key not in entry.values:
        raise ParameterError(entry.name, f"{value!r} is not one of IAMAP 1.0.2's values of {entry.name} ("
                                         f"{', '.join(str(k) for k in entry.values)}).")
    mapped = entry.values[key]
    if isinstance(mapped, Refused):
        raise ParameterError(entry.name, mapped.why)
    return mapped


def _legacy_defaults(tool: str, params: dict, result: Translation) -> None:
    out, given = result.params, []
    for name, value in LEGACY_DEFAULTS.get(tool, {}).items():
        if out.get(name) not in (None, "") or (name == "BACKBONE" and out.get("BACKBONE_NAME")):
            continue
        if name == "STRIDE" and int(out.get("SIZE") or value) < value:
            result.warnings.append(f"STRIDE: IAMAP 1.0.2 stepped {value} px between tiles of SIZE={out['SIZE']}, "
                                   "leaving pixels between them unencoded; here the tiles step by their size.")
            continue
        out[name] = value
        given.append(f"{name}={value!r}")
    if given:
        result.warnings.append("This call uses IAMAP 1.0.2's conventions, so parameters it leaves out take 1.0.2's "
                               f"defaults where today's differ: {', '.join(given)}. Give them to choose otherwise.")
    if tool in ("reduction", "cluster") and params.get("SUBSET") in (None, "") and not out.get("LOAD_MODEL"):
        result.warnings.append("SUBSET: IAMAP 1.0.2 fitted on every pixel when it was left empty; here the fit uses "
                               f"a seeded sample of SAMPLE_SIZE={out.get('SAMPLE_SIZE') or 'default'} pixels. Give a "
                               "larger SAMPLE_SIZE to fit on more.")


def _enum_indices(tool: str, result: Translation) -> None:
    """Enum values given as numbers read as the choice they number; every enum value checked."""
    out = result.params
    for spec in TOOLS[tool].parameters:
        value = out.get(spec.name)
        if spec.kind is not Kind.ENUM or value in (None, "") or not isinstance(value, (str, int)):
            continue
        try:
            index = _as_index(value)
        except ValueError:
            index = None
        if index is not None:
            orders = SHARED_ENUM_ORDERS.get(tool, {}).get(spec.name) if result.legacy else None
            out[spec.name] = _legacy_choice(spec.name, index, orders) if orders else _choice(spec, index)
            if orders:
                result.warnings.append(f"{spec.name}={value!r} read in IAMAP 1.0.2's order as {out[spec.name]!r}, "
                                       "as this call uses 1.0.2's conventions; give the name to be unambiguous.")
            else:
                _warn_if_1_0_2_read_it_otherwise(tool, spec.name, value, index, out[spec.name], result)
        if out[spec.name] not in spec.choices:
            noun = "method" if spec.name.endswith("METHOD") else "value"
            raise ParameterError(spec.name, f"unknown {noun} {out[spec.name]!r} for {tool}; choose one of "
                                            f"{', '.join(spec.choices)} (or its number, from 0).")


def _warn_if_1_0_2_read_it_otherwise(tool: str, name: str, value, index: int, today: str,
                                     result: Translation) -> None:
    """A number for a choice whose list 1.0.2 ordered otherwise: read in today's order, but a 1.0.2 script that
    gives no other sign of its age meant 1.0.2's entry, so the two readings are named."""
    orders = SHARED_ENUM_ORDERS.get(tool, {}).get(name)
    if not orders:
        return
    try:
        then = _legacy_choice(name, index, orders)
    except ParameterError:
        then = "another entry or none"
    if then != today:
        result.warnings.append(f"{name}={value!r} read as {today!r} (the order qgis_process help shows); in IAMAP "
                               f"1.0.2's list it was {then!r}. Give the name to be unambiguous.")


def _choice(spec, index: int) -> str:
    if not 0 <= index < len(spec.choices):
        raise ParameterError(spec.name, f"{index} is not a choice number: give 0 to {len(spec.choices) - 1} or the "
                                        f"name ({', '.join(spec.choices)}).")
    return spec.choices[index]


def _legacy_choice(name: str, index: int, orders: tuple) -> str:
    """The entry at ``index`` of 1.0.2's list, when every version of that list agrees on it."""
    if name == "MERGE_METHOD":
        mapped = MERGE_METHOD_VALUES.get(index)
        if isinstance(mapped, Refused):
            raise ParameterError(name, mapped.why)
    found = {order[index] for order in orders if 0 <= index < len(order)}
    if len(found) == 1:
        return found.pop()
    if not found:
        raise ParameterError(name, f"{index} is not a choice number of IAMAP 1.0.2's list (0 to "
                                   f"{max(len(o) for o in orders) - 1}); give the name instead.")
    raise ParameterError(name, f"{index} named different methods in IAMAP 1.0.2 depending on the scikit-learn "
                               f"installed ({' or '.join(sorted(found))}); give the name instead.")


def _sk_param_literal(result: Translation) -> None:
    """1.0.2 read SK_PARAM as a Python literal ({'n_init': 5}); today's is JSON: such a dict is converted."""
    text = result.params.get("SK_PARAM")
    if not isinstance(text, str) or not text.strip():
        return
    try:
        json.loads(text)
        return
    except ValueError:
        pass
    try:
        value = ast.literal_eval(text)  # literals only: never runs code
        converted = json.dumps(value)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return  # the engine explains what a valid SK_PARAM is
    if isinstance(value, dict):
        result.params["SK_PARAM"] = converted
        result.warnings.append(f"SK_PARAM {text!r} is a Python dictionary (IAMAP 1.0.2's form): read as the JSON "
                               f"{converted}.")


def _output_folder(tool: str, params: dict, result: Translation, input_stem) -> str:
    """``OUTPUT`` as the file 1.0.2 wrote in it, when it is a folder; returns the folder ("" when not one)."""
    value = params.get("OUTPUT")
    if tool not in OUTPUT_FILE_NAMES or not _is_folder(value, tool, result.legacy):
        return ""
    stem = input_stem() if input_stem else Path(str(params.get("INPUT", ""))).stem
    path = os.path.join(value, OUTPUT_FILE_NAMES[tool].format(stem=stem or "input"))
    result.params["OUTPUT"] = path
    result.warnings.append(f"OUTPUT {value!r} is a folder (IAMAP 1.0.2's convention): the output is written to "
                           f"{path}. Give a file name to choose it.")
    return str(value)


def _save_model_checkbox(tool: str, params: dict, result: Translation, folder: str) -> None:
    """1.0.2's SAVE_MODEL checkbox (on by default) saved ``<method>.pkl`` in the OUTPUT folder: the same name,
    as a model file, when it is on (or left out with an OUTPUT folder), nothing when it is off."""
    if tool not in SAVE_MODEL_TOOLS:
        return
    value, out = params.get("SAVE_MODEL"), result.params
    checkbox = _is_checkbox(value)
    if checkbox and not parse_bool(value) or out.get("LOAD_MODEL"):
        if checkbox:
            out.pop("SAVE_MODEL", None)
        return
    if not checkbox and not (value in (None, "") and folder):
        return
    method = out.get("METHOD") or TOOLS[tool]["METHOD"].default
    directory = folder or os.path.dirname(str(out.get("OUTPUT", ""))) or "."
    out["SAVE_MODEL"] = os.path.join(directory, MODEL_FILE_NAME.format(method=str(method).lower()))
    result.warnings.append(f"SAVE_MODEL: as IAMAP 1.0.2 did{'' if checkbox else ' by default'}, the fitted model "
                           f"is saved, to {out['SAVE_MODEL']} (1.0.2 wrote a .pkl pickle; this file cannot run "
                           "code). Give a file name to choose it, or SAVE_MODEL=false for none.")


def _pickle_with_saved_twin(result: Translation) -> None:
    """A 1.0.2 script loading ``<method>.pkl`` that this IAMAP saved as ``<method>.iamapmodel`` gets that file."""
    path = result.params.get("LOAD_MODEL")
    if not isinstance(path, str) or not path.lower().endswith(".pkl") or os.path.exists(path):
        return
    twin = str(Path(path).with_suffix(".iamapmodel"))
    if os.path.isfile(twin):
        result.params["LOAD_MODEL"] = twin
        result.warnings.append(f"LOAD_MODEL: {path} does not exist; {twin}, which this IAMAP saved under 1.0.2's "
                               "name, is loaded instead.")


def _is_folder(value, tool: str, legacy: bool) -> bool:
    """An existing folder, a path ending in a separator, or (in a 1.0.2 call) a path without an extension."""
    if not isinstance(value, str) or not value or tool not in OUTPUT_FILE_NAMES:
        return False
    if os.path.isdir(value) or value.endswith(("/", os.sep)):
        return True
    return legacy and not Path(value).suffix and not value.startswith(("memory:", "ogr:", "TEMPORARY"))


def _is_checkbox(value) -> bool:
    """SAVE_MODEL as 1.0.2's checkbox: a boolean, 0/1, or a word that reads as one ("true", "no", ...)."""
    if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
        return True
    if not isinstance(value, str) or not value.strip():
        return False
    try:
        parse_bool(value)
    except ValueError:
        return False
    return True


def _is_among(value, harmless: tuple) -> bool:
    return any(value == h and type(value) is type(h) for h in harmless) or str(value) in {str(h) for h in harmless}


def _as_index(value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().isdigit():
        raise ValueError(value)
    return int(str(value).strip())

