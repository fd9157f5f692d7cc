"""Writing rasters durably: creation options, output names, the row writer that makes every chunk durable (resume
relies on it), and the finishing step that gives a complete file its final name, record and fingerprint.

Reading rasters is :mod:`engine.rasters`.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import queue
import shutil
import threading
import zlib
from pathlib import Path

import numpy as np
import rasterio
import rasterio.errors
from rasterio.windows import Window

from .catalog import OUTPUT_FORMATS
from .destinations import sidecar_path
from .errors import ParameterError

#: Creation options of every float output but the encoder's (which follows OUTPUT_FORMAT): the feature layout
#: (tiled, pixel-interleaved, BigTIFF when needed, readable by QGIS 3.22), DEFLATE-compressed, written whole.
OUTPUT_OPTIONS = dict(OUTPUT_FORMATS["float32_deflate"].options, sparse_ok=False)


def check_output(path: str, parameter: str = "OUTPUT") -> Path:
    """An output GeoTIFF path of ``parameter``, refused unless it ends in .tif; its folder is created."""
    if not path:
        raise ParameterError(parameter, "no output file given.")
    output = Path(path)
    if output.suffix.lower() not in (".tif", ".tiff"):
        raise ParameterError(parameter, f"{output.name}: IAMAP writes GeoTIFF; give a file name ending in .tif.")
    if not output.parent.exists():
        output.parent.mkdir(parents=True, exist_ok=True)
    return output


def remove_outputs(output: Path) -> None:
    """Remove ``output`` with its .aux.xml and its sidecar record."""
    for path in (output, output.with_name(output.name + ".aux.xml"), sidecar_path(output)):
        path.unlink(missing_ok=True)


def finalize(partial: Path, output: Path, record: dict, parameter: str = "OUTPUT") -> None:
    """Move a complete ``partial`` file to ``output`` and write its sidecar record (atomic renames).

    The record gets the output's :func:`file_fingerprint` (``output_file``), so a later run can tell whether the
    file is still the one this run wrote before reusing it. A result without a single valid value is never
    reported as a success: the partial file is removed and the run fails, naming ``parameter``
    (:func:`check_has_valid_value`).
    """
    check_has_valid_value(partial, parameter)
    remove_outputs(output)
    os.replace(partial, output)
    aux = partial.with_name(partial.name + ".aux.xml")
    if aux.exists():
        os.replace(aux, output.with_name(output.name + ".aux.xml"))
    write_json(sidecar_path(output), {**record, "output_file": file_fingerprint(output)})


def check_has_valid_value(partial: Path, parameter: str) -> None:
    """Refuse a finished raster whose first band holds nothing but nodata (or NaN): such a file would look like a
    result. Read block by block up to the first valid value, so a normal output costs one block."""
    with rasterio.open(partial) as src:
        nodata = src.nodata
        for _, window in src.block_windows(1):
            values = src.read(1, window=window)
            valid = ~np.isnan(values) if values.dtype.kind == "f" else np.ones(values.shape, bool)
            if nodata is not None and not np.isnan(nodata):
                valid &= values != nodata
            if valid.any():
                return
        size = f"{src.width}x{src.height} px"
    partial.unlink(missing_ok=True)
    partial.with_name(partial.name + ".aux.xml").unlink(missing_ok=True)
    raise ParameterError(parameter, f"the result ({size}) has no valid value: every pixel is nodata, so it was not "
                                    "written. The input gives no valid pixel to compute from: check INPUT (its size, "
                                    "nodata value and bands) and EXTENT.")


#: Bytes hashed at each of the evenly spaced places :func:`file_fingerprint` reads.
FINGERPRINT_CHUNK = 64 * 1024
FINGERPRINT_CHUNKS = 9


def file_fingerprint(path: Path) -> dict:
    """Size, modification time and a SHA-256 of 9 evenly spaced 64 KiB chunks (head and tail included).

    Cheap whatever the file size (about half a megabyte read), and it changes when the file is truncated,
    replaced or rewritten in place.
    """
    stat = os.stat(path)
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        last = max(0, stat.st_size - FINGERPRINT_CHUNK)
        for i in range(FINGERPRINT_CHUNKS):
            f.seek(last * i // (FINGERPRINT_CHUNKS - 1))
            digest.update(f.read(FINGERPRINT_CHUNK))
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sample_sha256": digest.hexdigest()}


def fingerprint_change(path: Path, recorded: dict | None) -> str:
    """Why ``path`` is no longer the file ``recorded`` describes ("" when it still is)."""
    if not recorded:
        return "it has no fingerprint (written by an older IAMAP)"
    if not path.exists():
        return "it no longer exists"
    current = file_fingerprint(path)
    if current["size"] != recorded.get("size"):
        return f"its size changed from {recorded.get('size')} to {current['size']} bytes"
    if current["mtime_ns"] != recorded.get("mtime_ns") or current["sample_sha256"] != recorded.get("sample_sha256"):
        return "it was modified after it was written"
    return ""


def write_json(path: Path, record: dict) -> None:
    """Write ``record`` to ``path`` atomically (a temporary file renamed); nothing is left behind when it fails
    (a full disk)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(record, indent=2, default=str))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def rows_checksum(rows: np.ndarray) -> int:
    """CRC-32 of rows (bands, k, width) as rasterio reads them: detects rows that are missing or changed on disk."""
    return zlib.crc32(np.ascontiguousarray(rows))


class RowWriter:
    """Writes full-width rows of a GeoTIFF in order, in block-aligned chunks, and makes each chunk durable.

    The file is reopened for every chunk and closed after it, so a killed process leaves on disk every row
    reported through ``on_durable`` (the resume manifest relies on this). Each chunk is assembled in one
    contiguous (bands, rows, width) buffer, so rasterio hands it to GDAL without a copy of its own.

    Parameters
    ----------
    path : Path
        An existing GeoTIFF (created with :data:`OUTPUT_OPTIONS`).
    next_row : int
        First row still to write.
    on_durable : callable(int)
        Called with the number of rows now safely on disk. :attr:`last_chunk` then describes the rows just
        written (``first_row``, ``rows`` and the ``crc32`` of their values), so a resume can check them.
    """

    def __init__(self, path: Path, next_row: int = 0, on_durable=None):
        self.path, self.next_row, self.on_durable = path, next_row, on_durable
        self.last_chunk: dict | None = None
        with rasterio.open(path) as dst:
            self.height, self.block = dst.height, dst.block_shapes[0][0]
            #: half floats (OUTPUT_FORMAT float16): GDAL converts in its block cache and reports a failed write
            #: only on stderr when the file closes, so every chunk is read back
            self.half = dst.tags(1, ns="IMAGE_STRUCTURE").get("NBITS") == "16" and dst.dtypes[0] == "float32"
        self.pending: list[np.ndarray] = []  # (bands, k, width) pieces, in row order

    def add(self, first_row: int, rows: np.ndarray) -> None:
        """Queue ``rows`` (bands, k, width) starting at ``first_row``; rows before ``next_row`` are skipped."""
        queued = self.next_row + sum(p.shape[1] for p in self.pending)
        skip = queued - first_row
        if skip < 0:
            raise ValueError(f"rows must come in order: expected row {queued}, got {first_row}")
        if skip < rows.shape[1]:
            self.pending.append(rows[:, skip:])
        self._write(final=False)

    def close(self) -> None:
        self._write(final=True)

    def _take(self, count: int) -> np.ndarray:
        """The first ``count`` queued rows as one C-contiguous (bands, count, width) array."""
        first = self.pending[0]
        if first.shape[1] == count and first.flags.c_contiguous:
            return self.pending.pop(0)
        chunk = np.empty((first.shape[0], count, first.shape[2]), first.dtype)
        filled = 0
        while filled < count:
            piece = self.pending[0]
            take = min(count - filled, piece.shape[1])
            chunk[:, filled:filled + take] = piece[:, :take]
            filled += take
            if take == piece.shape[1]:
                self.pending.pop(0)
            else:
                self.pending[0] = piece[:, take:]
        return chunk

    def _write(self, final: bool) -> None:
        queued = sum(p.shape[1] for p in self.pending)
        end = self.next_row + queued
        if not final and end < self.height:
            end -= end % self.block  # only whole blocks, so no block is written twice
        count = end - self.next_row
        if count <= 0:
            return
        chunk = self._take(count)
        window = Window(0, self.next_row, chunk.shape[2], count)
        if self.half:
            check_half_float_range(chunk)
        # one write of whole blocks, so GDAL writes them at once and a failure raises here. A write GDAL only
        # caches (the last rows, an edge block; half floats) fails silently when the file closes (GDAL 3.10
        # through rasterio): hence the free-space check, and those rows are read back
        check_free_space(self.path, chunk.nbytes)
        with rasterio.open(self.path, "r+") as dst:
            dst.write(chunk, window=window)
        if self.half or end >= self.height:
            lost = f"Write failed: rows {self.next_row}-{end} of {self.path.name} did not reach the disk intact"
            try:
                with rasterio.open(self.path) as src:
                    stored = src.read(window=window)
            except rasterio.errors.RasterioIOError as exc:
                raise OSError(errno.EIO, lost, str(self.path)) from exc
            if not stored_as_written(stored, chunk, self.half):
                raise OSError(errno.EIO, lost, str(self.path))
            crc = rows_checksum(stored)  # what a resume reads back (half floats are rounded)
        else:
            crc = rows_checksum(chunk)
        if self.on_durable is not None:
            self.last_chunk = {"first_row": self.next_row, "rows": count, "crc32": crc}
        self.next_row = end
        if self.on_durable is not None:
            self.on_durable(end)


#: The largest finite half float: features beyond it would be stored as infinity.
HALF_MAX = 65504.0


def check_half_float_range(rows: np.ndarray) -> None:
    """Refuse features a half float cannot hold (OUTPUT_FORMAT float16), naming the parameter and the fix."""
    largest = float(np.nanmax(np.abs(rows), initial=0.0))
    if largest > HALF_MAX:
        raise ParameterError("OUTPUT_FORMAT", f"feature values reach {largest:.4g}, beyond what float16 storage holds "
                                              f"({HALF_MAX:g}); choose float32 storage.")


def stored_as_written(stored: np.ndarray, written: np.ndarray, half: bool) -> bool:
    """Whether rows read back are the rows written: exactly, or for half floats within their rounding."""
    if not half:
        return np.array_equal(stored, written, equal_nan=True)
    return np.array_equal(np.isnan(stored), np.isnan(written)) and np.allclose(
        stored, written, rtol=2 ** -10, atol=2 ** -23, equal_nan=True)


def check_free_space(path: Path, nbytes: int) -> None:
    """Raise ENOSPC unless the disk holding ``path`` has room for ``nbytes`` more (plus 1 MiB for the file's
    directory): GDAL reports a full disk only on stderr when it writes a cached block at closing."""
    free = shutil.disk_usage(path.parent).free
    if free < nbytes + 2**20:
        raise OSError(errno.ENOSPC, f"No space left on device: {nbytes} bytes to write, {free} free", str(path))


class BackgroundRowWriter(threading.Thread):
    """A :class:`RowWriter` in its own thread behind a bounded queue, so compressing and writing overlap the model.

    :meth:`add` blocks when ``depth`` batches of rows wait (memory stays bounded); a writing error is raised by
    the next :meth:`add` or by :meth:`close`. :meth:`stop` (on an error elsewhere) still writes the rows already
    queued, which are complete, so a resume keeps them.
    """

    def __init__(self, writer: RowWriter, depth: int = 2):
        super().__init__(daemon=True)
        self.writer = writer
        self.queue: queue.Queue = queue.Queue(maxsize=depth)
        self.error: BaseException | None = None
        self.start()

    _STOP = object()

    def run(self) -> None:
        while (item := self.queue.get()) is not None and item is not self._STOP:
            if self.error is None:
                try:
                    self.writer.add(*item)
                except BaseException as exc:  # raised in the main thread
                    self.error = exc
        if item is None and self.error is None:  # closing: the last rows, even if they end inside a block
            try:
                self.writer.close()
            except BaseException as exc:
                self.error = exc

    def add(self, first_row: int, rows: np.ndarray) -> None:
        self._raise()
        self.queue.put((first_row, rows))

    def close(self) -> None:
        self.queue.put(None)
        self.join()
        self._raise()

    def stop(self) -> None:
        if self.is_alive():
            self.queue.put(self._STOP)
            self.join()

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error
