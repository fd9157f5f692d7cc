"""Raster input and output: opening with an optional warp, band and extent checks, strip reads and the
strip-by-strip pass every pixel-wise tool uses, and
GeoTIFF outputs that are written under a temporary name and renamed only when complete.

Pixel positions become coordinates through :func:`grid_transform`, never ``src.transform`` directly: a raster
without georeferencing must come out where QGIS shows it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import warnings
import zlib
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.errors import CRSError, NotGeoreferencedWarning
from rasterio.windows import Window

from .destinations import partial_path, sidecar_path  # noqa: F401 (the naming rules, re-exported)
from .errors import ParameterError

#: Creation options of every float output: tiled, compressed, BigTIFF when needed, readable by QGIS 3.22.
OUTPUT_OPTIONS = {"driver": "GTiff", "tiled": True, "blockxsize": 256, "blockysize": 16, "compress": "deflate",
                  "zlevel": 1, "predictor": 3, "interleave": "pixel", "bigtiff": "if_safer"}


@contextlib.contextmanager
def open_raster(path: str, target_crs: str = "", resolution: float = 0.0, parameter: str = "INPUT"):
    """Open ``path``; with ``target_crs`` and/or ``resolution`` it is read through a warped view.

    Every tool opens its input here, so the checks every input needs (real-valued bands) live here too.
    """
    try:
        src = rasterio.open(path)
    except Exception as exc:
        raise ParameterError(parameter, f"cannot open {path} as a raster: {exc}") from None
    with src:
        check_real_valued(src, parameter)
        if not target_crs and not resolution:
            yield src
            return
        from rasterio.vrt import WarpedVRT
        from rasterio.warp import calculate_default_transform

        dst_crs = target_crs_of(target_crs) if target_crs else src.crs
        if src.crs is None:
            raise ParameterError("TARGET_CRS", "the input raster has no CRS, so it cannot be reprojected.")
        kwargs = {"resolution": resolution} if resolution else {}
        transform, width, height = calculate_default_transform(src.crs, dst_crs, src.width, src.height,
                                                               *src.bounds, **kwargs)
        with WarpedVRT(src, crs=dst_crs, transform=transform, width=width, height=height,
                       resampling=rasterio.enums.Resampling.bilinear, src_nodata=src.nodata,
                       nodata=src.nodata) as vrt:
            yield vrt


def target_crs_of(text: str, parameter: str = "TARGET_CRS"):
    """The CRS named by ``text`` (authority id, WKT or PROJ string); an unknown one is a parameter error, never
    silently ignored."""
    try:
        return rasterio.crs.CRS.from_user_input(text)
    except CRSError as exc:
        raise ParameterError(parameter, f"{text!r} is not a coordinate reference system that PROJ knows ({exc}). "
                                        "Give an authority id such as EPSG:32631, a WKT or PROJ string, or leave "
                                        "it empty to keep the raster's CRS.") from None


def check_real_valued(src, parameter: str = "INPUT") -> None:
    """Refuse complex bands (CInt16, CFloat32...): reading them as real numbers would drop the imaginary part."""
    complex_bands = [band for band, dtype in enumerate(src.dtypes, start=1) if dtype.startswith("complex")]
    if complex_bands:
        raise ParameterError(parameter, f"{Path(src.name).name} has complex-valued band(s) {complex_bands} "
                                        f"({src.dtypes[complex_bands[0] - 1]}); IAMAP reads real values and would "
                                        "lose the imaginary part. Split the raster first into real and imaginary "
                                        "bands, or amplitude and phase, e.g. with GDAL's raster calculator "
                                        "(Processing: GDAL > Raster miscellaneous > Raster calculator, or "
                                        "gdal_calc.py) and the formulas real(A) and imag(A), or absolute(A) and "
                                        "angle(A), then use that raster.")


#: Where QGIS places a raster that has no geotransform: origin (0, 0), pixels of 1 x 1, rows going down (negative
#: y). GDAL and rasterio report the identity instead (rows going up), which would flip the outputs in QGIS.
UNREFERENCED_TRANSFORM = Affine(1, 0, 0, 0, -1, 0)


def grid_transform(src) -> Affine:
    """The geotransform of ``src`` as QGIS places it on the map (see :data:`UNREFERENCED_TRANSFORM`).

    A raster without a geotransform is recognised as GDAL does: reading its geotransform fails, which rasterio
    reports with a ``NotGeoreferencedWarning`` (a raster that stores the identity, or has GCPs, keeps it).
    """
    if not src.transform.is_identity or not hasattr(src, "read_transform"):
        return src.transform
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NotGeoreferencedWarning)
        src.read_transform()
    if any(issubclass(w.category, NotGeoreferencedWarning) for w in caught):
        return UNREFERENCED_TRANSFORM
    return src.transform


def window_transform(src, window: Window) -> Affine:
    """The geotransform of ``window`` of ``src``, as QGIS places it (:func:`grid_transform`)."""
    return rasterio.windows.transform(window, grid_transform(src))


def check_bands(src, bands, parameter: str = "BANDS") -> list[int]:
    """1-based band numbers to read: all bands when ``bands`` is None."""
    if bands is None:
        return list(range(1, src.count + 1))
    bands = [int(b) for b in bands]
    if not bands:
        raise ParameterError(parameter, "no band selected; select at least one band or leave the parameter empty "
                                        "to use all bands.")
    wrong = [b for b in bands if not 1 <= b <= src.count]
    if wrong:
        raise ParameterError(parameter, f"band(s) {wrong} do not exist: the raster has {src.count} band(s), "
                                        f"numbered 1 to {src.count}.")
    return bands


def extent_window(src, extent, parameter: str = "EXTENT") -> Window:
    """The window of whole pixels covering ``extent`` (xmin, ymin, xmax, ymax in the raster's CRS) inside the
    raster; the whole raster when ``extent`` is None."""
    full = Window(0, 0, src.width, src.height)
    if not extent:
        return full
    xmin, ymin, xmax, ymax = map(float, extent)
    if xmin >= xmax or ymin >= ymax:
        raise ParameterError(parameter, f"empty extent {extent}: xmin must be < xmax and ymin < ymax.")
    transform = grid_transform(src)
    window = rasterio.windows.from_bounds(xmin, ymin, xmax, ymax, transform=transform)
    col0, row0 = math.floor(window.col_off + 1e-6), math.floor(window.row_off + 1e-6)
    col1 = math.ceil(window.col_off + window.width - 1e-6)
    row1 = math.ceil(window.row_off + window.height - 1e-6)
    col0, row0, col1, row1 = max(col0, 0), max(row0, 0), min(col1, src.width), min(row1, src.height)
    if col0 >= col1 or row0 >= row1:
        b = rasterio.windows.bounds(full, transform)
        raise ParameterError(parameter, f"the extent ({xmin:g}, {ymin:g}, {xmax:g}, {ymax:g}) does not overlap the "
                                        f"raster, whose bounds are ({b[0]:g}, {b[1]:g}, {b[2]:g}, {b[3]:g}) "
                                        f"in {src.crs}.")
    return Window(col0, row0, col1 - col0, row1 - row0)


def read_padded(src, bands: list[int], window: Window, row_off: int, height: int, col_off: int, width: int):
    """Read rows/columns relative to ``window``, padding with invalid pixels where they leave it.

    Returns (data float32 (bands, height, width), valid bool (bands, height, width)).
    """
    r0, r1 = max(row_off, 0), min(row_off + height, window.height)
    c0, c1 = max(col_off, 0), min(col_off + width, window.width)
    if r0 >= r1 or c0 >= c1:
        return np.zeros((len(bands), height, width), np.float32), np.zeros((len(bands), height, width), bool)
    read = Window(window.col_off + c0, window.row_off + r0, c1 - c0, r1 - r0)
    block = src.read(bands, window=read, out_dtype=np.float32)
    ok = np.isfinite(block)
    for i, band in enumerate(bands):
        nodata = src.nodatavals[band - 1]
        if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
            ok[i] &= block[i] != np.float32(nodata)
    if block.shape == (len(bands), height, width):  # nothing to pad: no copy
        return block, ok
    data = np.zeros((len(bands), height, width), np.float32)
    valid = np.zeros((len(bands), height, width), bool)
    data[:, r0 - row_off:r1 - row_off, c0 - col_off:c1 - col_off] = block
    valid[:, r0 - row_off:r1 - row_off, c0 - col_off:c1 - col_off] = ok
    return data, valid


#: Bytes of float32 pixel data per strip read: bounds the memory of every block-wise pass.
STRIP_BYTES = 64 * 2**20


def strip_rows(window: Window, band_count: int, strip_bytes: int | None = None) -> int:
    """Rows per strip so that one strip of ``band_count`` float32 bands stays under ``strip_bytes``
    (default :data:`STRIP_BYTES`)."""
    strip_bytes = strip_bytes or STRIP_BYTES
    return int(max(1, min(window.height, strip_bytes // max(1, window.width * band_count * 4))))


def iter_strips(src, bands: list[int], window: Window, rows: int | None = None):
    """Yield (first_row, pixels, valid) strip by strip: pixels (n, bands) float32, valid (n,) bool, row-major."""
    rows = rows or strip_rows(window, len(bands))
    for row in range(0, window.height, rows):
        height = min(rows, window.height - row)
        data, valid = read_padded(src, bands, window, row, height, 0, window.width)
        yield row, data.reshape(len(bands), -1).T, valid.all(axis=0).ravel()


def check_output(path: str, parameter: str = "OUTPUT") -> Path:
    if not path:
        raise ParameterError(parameter, "no output file given.")
    output = Path(path)
    if output.suffix.lower() not in (".tif", ".tiff"):
        raise ParameterError(parameter, f"{output.name}: IAMAP writes GeoTIFF; give a file name ending in .tif.")
    if not output.parent.exists():
        output.parent.mkdir(parents=True, exist_ok=True)
    return output


def remove_outputs(output: Path) -> None:
    for path in (output, output.with_name(output.name + ".aux.xml"), sidecar_path(output)):
        path.unlink(missing_ok=True)


def finalize(partial: Path, output: Path, record: dict) -> None:
    """Move a complete ``partial`` file to ``output`` and write its sidecar record (atomic renames).

    The record gets the output's :func:`file_fingerprint` (``output_file``), so a later run can tell whether the
    file is still the one this run wrote before reusing it.
    """
    remove_outputs(output)
    os.replace(partial, output)
    aux = partial.with_name(partial.name + ".aux.xml")
    if aux.exists():
        os.replace(aux, output.with_name(output.name + ".aux.xml"))
    write_json(sidecar_path(output), {**record, "output_file": file_fingerprint(output)})


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
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=2, default=str))
    os.replace(tmp, path)


def rows_checksum(rows: np.ndarray) -> int:
    """CRC-32 of rows (bands, k, width) as stored: detects rows that are missing or changed on disk."""
    return zlib.crc32(np.ascontiguousarray(rows).tobytes())


class RowWriter:
    """Writes full-width rows of a GeoTIFF in order, in block-aligned chunks, and makes each chunk durable.

    The file is reopened for every chunk and closed after it, so a killed process leaves on disk every row
    reported through ``on_durable`` (the resume manifest relies on this).

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
        self.pending: list[np.ndarray] = []

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

    def _write(self, final: bool) -> None:
        queued = sum(p.shape[1] for p in self.pending)
        end = self.next_row + queued
        if not final and end < self.height:
            end -= end % self.block  # only whole blocks, so no block is written twice
        count = end - self.next_row
        if count <= 0:
            return
        data = np.concatenate(self.pending, axis=1)
        with rasterio.open(self.path, "r+") as dst:
            dst.write(data[:, :count], window=Window(0, self.next_row, data.shape[2], count))
        self.pending = [data[:, count:]] if count < data.shape[1] else []
        if self.on_durable is not None:
            self.last_chunk = {"first_row": self.next_row, "rows": count, "crc32": rows_checksum(data[:, :count])}
        self.next_row = end
        if self.on_durable is not None:
            self.on_durable(end)
