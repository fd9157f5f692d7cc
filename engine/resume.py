"""Resuming the encoder honestly: what a run may reuse from disk, checked before it is reused.

- A complete output is reused only when its record (``<name>.iamap.json``) was written for the same parameters
  *and* the file is still the one that run wrote (:func:`engine.rasters.fingerprint_change`: size,
  modification time, sampled content).
- A partial output (``<name>.partial.tif``) is continued only from the rows its manifest
  (``<name>.partial.json``) says are durable *and* that read back with the checksum recorded when they were
  written; anything else starts over, and the log says why.
"""

from __future__ import annotations

import json
from pathlib import Path

import rasterio
from rasterio.windows import Window

from .destinations import sidecar_path
from .number_lists import number_list
from .raster_writing import fingerprint_change, rows_checksum, write_json


#: The parameter behind each entry of an encoder run's record, as a message names it.
RECORD_PARAMETERS = {"input": "INPUT", "bands": "BANDS", "window": "EXTENT", "size": "SIZE", "stride": "STRIDE",
                     "model": "BACKBONE", "weights": "PRETRAINED", "checkpoint": "CKPT", "merge": "MERGE_METHOD",
                     "normalization": "NORMALIZATION", "precision": "PRECISION", "target_crs": "TARGET_CRS",
                     "target_resolution": "TARGET_RESOLUTION", "output_format": "OUTPUT_FORMAT",
                     "iamap_version": "the IAMAP version"}


def changed_parameters(before: dict | None, now: dict) -> str:
    """What differs between the record of an earlier run and this run's, as ``"SIZE 224 -> 112, STRIDE ..."``
    ("other parameters" when the earlier record is unknown: written by an older IAMAP)."""
    if not isinstance(before, dict):
        return "other parameters"
    changes = []
    for key, parameter in RECORD_PARAMETERS.items():
        old, new = before.get(key), now.get(key)
        if old == new:
            continue
        if isinstance(new, dict):
            changes.append(f"{parameter} (the file changed)")
        else:
            changes.append(f"{parameter} {_shown(old)} -> {_shown(new)}")
    return ", ".join(changes) or "other parameters"


def _shown(value) -> str:
    """A record value in a message: band lists summarised (:func:`engine.number_lists.number_list`)."""
    if isinstance(value, list) and len(value) > 4 and all(isinstance(v, int) for v in value):
        return f"[{number_list(value)}]"
    return str(value)


def manifest_path(partial: Path) -> Path:
    """``out.partial.tif`` -> ``out.partial.json``."""
    return partial.with_suffix(".json")


def reusable_output(output: Path, digest: str) -> tuple[bool, str]:
    """Whether ``output`` is a complete, untouched result of a run with parameter hash ``digest``.

    Returns (reusable, why not): ``why not`` is empty when there is nothing of these parameters to reuse.
    """
    sidecar = sidecar_path(output)
    if not (output.exists() and sidecar.exists()):
        return False, ""
    try:
        record = json.loads(sidecar.read_text())
    except ValueError:
        return False, f"its record {sidecar.name} is unreadable"
    if record.get("params_hash") != digest:
        return False, ""
    change = fingerprint_change(output, record.get("output_file"))
    return not change, change


class Manifest:
    """The resume state of a partial output: parameter hash, durable rows, and the checksum of the last ones."""

    def __init__(self, partial: Path, digest: str, total_rows: int, record: dict | None = None):
        self.partial, self.path, self.digest, self.total_rows = partial, manifest_path(partial), digest, total_rows
        self.record = record  #: the run's record (kept in the manifest, to say what a later run changed)

    def write(self, rows_done: int, last_chunk: dict | None) -> None:
        write_json(self.path, {"hash": self.digest, "rows_done": rows_done, "total_rows": self.total_rows,
                               "last_chunk": last_chunk, "record": self.record})

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    def resume_point(self) -> tuple[int, dict | None, str]:
        """(rows to keep, the checked chunk, why nothing is kept): rows_done when the partial still holds them."""
        if not (self.partial.exists() and self.path.exists()):
            return 0, None, ""
        try:
            state = json.loads(self.path.read_text())
        except ValueError:
            return 0, None, f"its manifest {self.path.name} is unreadable"
        if state.get("hash") != self.digest or state.get("total_rows") != self.total_rows:
            if not int(state.get("rows_done") or 0):
                return 0, None, ""  # nothing was written into it yet
            return 0, None, f"it was written with {changed_parameters(state.get('record'), self.record or {})}"
        rows_done, chunk = int(state.get("rows_done") or 0), state.get("last_chunk")
        if rows_done == 0:
            return 0, None, ""
        problem = self._check(rows_done, chunk)
        return (0, None, problem) if problem else (rows_done, chunk, "")

    def _check(self, rows_done: int, chunk: dict | None) -> str:
        if not chunk or chunk.get("first_row", -1) + chunk.get("rows", 0) != rows_done:
            return f"its manifest claims {rows_done} rows without a checksum of the last ones"
        try:
            with rasterio.open(self.partial) as src:
                if rows_done > src.height:
                    return f"its manifest claims {rows_done} rows of a {src.height}-row file"
                rows = src.read(window=Window(0, chunk["first_row"], src.width, chunk["rows"]))
        except Exception as exc:  # truncated or damaged: GDAL refuses the read
            return f"rows {chunk['first_row']}-{rows_done} cannot be read back ({type(exc).__name__}: {exc})"
        if rows_checksum(rows) != chunk.get("crc32"):
            return f"rows {chunk['first_row']}-{rows_done} on disk differ from what was written"
        return ""
