"""IAMAP model files (``.iamapmodel``): what SAVE_MODEL writes and LOAD_MODEL reads.

A model file is a zip of two members:

- ``iamap-model.json``: the record, plain JSON: format and format version, tool, method, bands and band count,
  input, fitted pixels, library versions, parameters, estimator parameters, fit figures, how the pipeline maps
  pixels, and the payload's sha256 and the types it names;
- ``pipeline.skops``: the fitted pipeline, stored so that loading it cannot run code (see
  :mod:`engine.model_payload`).

LOAD_MODEL reads and checks the record first (IAMAP model, format, tool, library versions, band count), then
lists the payload's types from its schema and compares them with the allowlist; only then is anything
constructed. Anything else is refused with a message saying why and how to fit the model again: a pickle
(``.joblib``/``.pkl`` models of earlier IAMAP versions, or any other) runs its author's code when loaded,
and a payload with types outside the allowlist could. ``TRUST_MODEL`` loads such a file anyway, for that
run only, and the log says what was trusted: the path, the file's sha256, and the types (or "a pickle"). IAMAP
1.0.2's ``.pkl`` (a bare scikit-learn estimator) is then applied as 1.0.2 did (:mod:`engine.legacy_models`).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
import zipfile
import zlib
from pathlib import Path

from . import __version__, legacy_models
from .errors import ParameterError
from .number_lists import number_list
from .estimator_registry import library_versions
from .events import NULL_REPORTER
from .fitting import APPLIERS
from .model_payload import ALLOWED_TYPES, PayloadError, load_payload, payload_bytes, payload_types

MODEL_SUFFIX = ".iamapmodel"
MODEL_FORMAT = "iamap-model"
#: 2: the zip of a JSON record and a skops payload.
MODEL_FORMAT_VERSION = 2
#: The joblib pickles of IAMAP 0.1, loaded only with TRUST_MODEL.
PICKLE_FORMAT_VERSION = 1
RECORD_NAME = "iamap-model.json"
PAYLOAD_NAME = "pipeline.skops"
#: Versions recorded but not required to match: fitted objects do not depend on them (skops reads its older
#: files; numpy arrays are stored as .npy).
VERSIONS_NOT_CHECKED = ("iamap", "python", "numpy", "skops")
REFIT = (f"Fit the model again (leave LOAD_MODEL empty) and save it with SAVE_MODEL to a {MODEL_SUFFIX} file, "
         f"which cannot run code")


def describe(model: dict) -> str:
    """One line about a model for the log: method, tool, fitted pixels, bands and input."""
    meta = model["metadata"]
    return (f"{meta['method']} ({meta['tool']}) fitted on {meta.get('fitted_pixels') or 'unrecorded'} pixels of "
            f"{meta.get('band_count')} band(s) from {Path(meta.get('input', '?')).name}")


def check_save_path(path: str) -> Path:
    """SAVE_MODEL as a path, refused before any work unless it names a model file."""
    target = Path(path)
    if target.suffix.lower() != MODEL_SUFFIX:
        raise ParameterError("SAVE_MODEL", f"{target.name}: give a file name ending in {MODEL_SUFFIX} (IAMAP's model "
                                           f"file, which cannot run code when loaded; .joblib pickles are no longer "
                                           f"written).")
    return target


def save_model(model: dict, path: str, reporter=NULL_REPORTER) -> Path:
    """Write ``model`` as a model file, atomically: a half-written file never carries the final name, and the
    temporary file does not outlive a failed write."""
    target = check_save_path(path)
    try:
        payload = payload_bytes(model["pipeline"])
    except PayloadError as exc:
        raise ParameterError("SAVE_MODEL", f"the fitted {model['metadata'].get('method')} cannot be saved: {exc}. "
                                           f"Leave SAVE_MODEL empty, or change the method's parameters.") from None
    types = payload_types(payload)
    outside = sorted(types - ALLOWED_TYPES)
    if outside:  # possible with some SK_PARAM values (another metric...): the user learns it now, not on load
        reporter.warning(f"SAVE_MODEL: the fitted {model['metadata'].get('method')} holds types IAMAP does not load "
                         f"without TRUST_MODEL ({', '.join(outside)}); LOAD_MODEL will refuse {target.name} unless "
                         f"TRUST_MODEL is set.")
    record = {**model["metadata"], "format": MODEL_FORMAT, "format_version": MODEL_FORMAT_VERSION,
              "payload": {"name": PAYLOAD_NAME, "sha256": hashlib.sha256(payload).hexdigest(), "types": sorted(types)}}
    text = json.dumps(record, indent=1, default=_json_value)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    try:
        with open(tmp, "wb") as stream:
            with zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as archive:
                archive.writestr(RECORD_NAME, text)
                archive.writestr(PAYLOAD_NAME, payload, compress_type=zipfile.ZIP_STORED)  # compressed inside
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        # a write error on a stream names no file: name it, so the worker can tell which destination failed
        raise OSError(exc.errno, exc.strerror, str(tmp)) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def _json_value(value):
    """Numpy scalars and arrays in the record (figures, parameters) as plain JSON."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def load_model(path: str, tool: str, band_count: int, trust: bool = False, reporter=NULL_REPORTER) -> dict:
    """Load a model file and check that it fits ``tool`` and the selected bands; see the module docstring.

    ``trust`` is TRUST_MODEL: load a pickle, or a payload with types outside the allowlist, saying so.
    """
    source = Path(path)
    if not source.is_file():
        raise ParameterError("LOAD_MODEL", f"{path} does not exist.")
    if not zipfile.is_zipfile(source):
        start = _start(source)
        if start[:4] == _ZIP_MAGIC or not start:  # a zip cut short, or nothing left: a pickle is neither
            raise _damaged(source, "its end is missing" if start else "it is empty")
        if trust:
            return _load_trusted_pickle(source, tool, band_count, reporter)
        raise ParameterError("LOAD_MODEL", f"{source.name} is not an IAMAP model file ({MODEL_SUFFIX}). A model saved "
                                           f"by an earlier IAMAP (IAMAP 1.0.2's .pkl, 0.1's .joblib) or any other "
                                           f"pickle runs whatever code it holds when loaded, so IAMAP does not load "
                                           f"it. {REFIT}. Only if you trust this very file, set TRUST_MODEL to load "
                                           f"it as a pickle (IAMAP 1.0.2's .pkl is then applied as 1.0.2 applied "
                                           f"it).")
    try:
        with zipfile.ZipFile(source) as archive:
            names = archive.namelist()
            if RECORD_NAME not in names and _begins_as_model_file(_start(source)):
                raise _damaged(source, "its end is missing")
            if RECORD_NAME not in names:
                raise ParameterError("LOAD_MODEL", f"{source.name} is not an IAMAP model file (written by SAVE_MODEL"
                                                   f" to a {MODEL_SUFFIX} file): it has no {RECORD_NAME}.")
            record = json.loads(archive.read(RECORD_NAME))
            check_record(record, source.name, tool, band_count)
            payload = archive.read(record["payload"]["name"])
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:  # a member cut short or altered
        raise _damaged(source, f"{type(exc).__name__}: {exc}") from None
    except (KeyError, TypeError, ValueError, UnicodeDecodeError, OSError) as exc:
        raise ParameterError("LOAD_MODEL", f"cannot read {source.name} as an IAMAP model ({type(exc).__name__}: "
                                           f"{exc}). Load a file written by SAVE_MODEL, or fit again.") from None
    try:
        if hashlib.sha256(payload).hexdigest() != record["payload"].get("sha256"):
            raise PayloadError("its payload does not match the sha256 of its record (damaged or altered)")
        types = payload_types(payload)
        outside = sorted(types - ALLOWED_TYPES)
        if outside and not trust:
            raise ParameterError("LOAD_MODEL", f"{source.name} holds types that IAMAP does not load: "
                                               f"{', '.join(outside)}. Building them could run code, so nothing was "
                                               f"loaded. {REFIT}. Only if you trust this very file, set TRUST_MODEL.")
        if outside:
            reporter.warning(f"TRUST_MODEL: loading {source.resolve()} (sha256 {file_sha256(source)}) although it "
                             f"holds types outside IAMAP's allowlist, which may run code: {', '.join(outside)}.")
        pipeline = load_payload(payload, types)
    except PayloadError as exc:
        raise ParameterError("LOAD_MODEL", f"cannot read {source.name} as an IAMAP model: {exc}. Load a file "
                                           f"written by SAVE_MODEL, or fit again.") from None
    return {"pipeline": pipeline, "metadata": record}


#: How every zip, so every model file, begins (a local file header), and where that header holds the name of
#: its member (a model file's first member is its record).
_ZIP_MAGIC, _NAME_AT = b"PK\x03\x04", 30


def _start(source: Path) -> bytes:
    with open(source, "rb") as stream:
        return stream.read(_NAME_AT + len(RECORD_NAME))


def _begins_as_model_file(start: bytes) -> bool:
    """Whether a file beginning with ``start`` begins as a model file: a zip whose first member is the record.

    A zip cut short keeps its beginning but loses its directory, at its end; Python then finds the directory of
    the payload (itself a zip, stored last) and sees a zip without the record."""
    return start[:4] == _ZIP_MAGIC and start[_NAME_AT:] == RECORD_NAME.encode()


def _damaged(source: Path, detail: str) -> ParameterError:
    """The error for a model file that is damaged: cut short (an interrupted copy or download) or altered."""
    return ParameterError("LOAD_MODEL", f"{source.name} is a damaged IAMAP model file ({source.stat().st_size:,} "
                                        f"bytes; {detail}): a copy or download cut short, or a file altered since "
                                        "SAVE_MODEL wrote it. Copy it again from where it was saved, or fit the model "
                                        "again and save it with SAVE_MODEL.")


def check_record(meta, name: str, tool: str, band_count: int, format_version: int = MODEL_FORMAT_VERSION) -> None:
    """The record's checks, before anything is deserialised: an IAMAP model of this format, for ``tool``, saved
    with the same library versions, fitted on ``band_count`` bands."""
    if not isinstance(meta, dict) or meta.get("format") != MODEL_FORMAT or meta.get("apply") not in APPLIERS:
        raise ParameterError("LOAD_MODEL", f"{name} is not an IAMAP model file (written by SAVE_MODEL).")
    if meta.get("format_version") != format_version:
        raise ParameterError("LOAD_MODEL", f"{name} is an IAMAP model of format {meta.get('format_version')}, this "
                                           f"IAMAP {__version__} reads format {format_version}; fit the model again.")
    if meta.get("tool") != tool:
        raise ParameterError("LOAD_MODEL", f"{name} is a {meta.get('tool')} model ({meta.get('method')}); "
                                           f"load it in iamap:{meta.get('tool')}, not iamap:{tool}.")
    saved, current = meta.get("versions") or {}, library_versions(meta.get("method"))
    for library in current:
        if library in VERSIONS_NOT_CHECKED or (library not in saved and library != "scikit-learn"):
            continue  # a library an older record does not name (pynndescent) is not held against it
        if saved.get(library) != current[library]:
            raise ParameterError("LOAD_MODEL", f"{name} was saved with {library} {saved.get(library)}; this "
                                               f"IAMAP environment has {library} {current[library]}, and models "
                                               f"cannot be moved safely between versions. Fit the model again "
                                               f"(leave LOAD_MODEL empty) with the same parameters.")
    if meta.get("band_count") != band_count:
        fitted_on = f"bands {number_list(meta.get('bands') or [])} of {Path(meta.get('input', '?')).name}"
        raise ParameterError("BANDS", f"the model in {name} was fitted on {meta.get('band_count')} band(s) "
                                      f"({fitted_on}); the selected input has {band_count}. Select the same bands, "
                                      "or fit a new model.")


def file_sha256(path: Path) -> str:
    """The SHA-256 of the file at ``path``, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _load_trusted_pickle(source: Path, tool: str, band_count: int, reporter) -> dict:
    """TRUST_MODEL on a file that is not a model container: joblib, after saying what is trusted; IAMAP 1.0.2's
    bare estimator is applied as 1.0.2 applied it (:mod:`engine.legacy_models`)."""
    # deferred: only a trusted pickle (TRUST_MODEL) is read with joblib
    import joblib

    digest = file_sha256(source)
    reporter.warning(f"TRUST_MODEL: loading {source.resolve()} (sha256 {digest}) as a pickle, which "
                     f"runs any code it holds.")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = joblib.load(source)
    except Exception as exc:  # any unpickling failure: a foreign or damaged file
        raise ParameterError("LOAD_MODEL", f"cannot read {source.name} as an IAMAP model ({type(exc).__name__}: "
                                           f"{exc}). Load a file written by SAVE_MODEL.") from None
    for message in dict.fromkeys(str(w.message) for w in caught):  # pickled by another scikit-learn, and the like
        reporter.warning(f"LOAD_MODEL: {source.name}: {message}")
    if legacy_models.is_estimator(model):  # IAMAP 1.0.2 pickled the bare estimator
        return legacy_models.wrap(model, source, digest, tool, band_count, reporter)
    if not isinstance(model, dict) or "pipeline" not in model:
        raise ParameterError("LOAD_MODEL", f"{source.name} is not an IAMAP model file (written by SAVE_MODEL), "
                                           f"nor a scikit-learn estimator or pipeline (as IAMAP 1.0.2 saved its "
                                           f".pkl models): it holds a {type(model).__name__}, which IAMAP cannot "
                                           f"apply. {REFIT}.")
    meta = {**model.get("metadata", {}), "format": model.get("format"), "format_version": model.get("format_version")}
    check_record(meta, source.name, tool, band_count, format_version=PICKLE_FORMAT_VERSION)
    return {"pipeline": model["pipeline"], "metadata": meta}
