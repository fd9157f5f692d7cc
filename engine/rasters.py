"""Reading rasters: opening with an optional warp, refusing what cannot be read right (complex bands, an unknown
target CRS), band and extent checks, padded reads and the strip-by-strip pass every pixel-wise tool uses.
Writing them is :mod:`engine.raster_writing`.

Pixel positions become coordinates through :func:`grid_transform`, never ``src.transform`` directly: a raster
without georeferencing must come out where QGIS shows it.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.errors import CRSError, NotGeoreferencedWarning
from rasterio.vrt import WarpedVRT
from rasterio.warp import calculate_default_transform
from rasterio.windows import Window

from .errors import ParameterError
from .number_lists import number_list


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
        check_sources_exist(src, parameter)
        if not target_crs and not resolution:
            yield src
            return

        dst_crs = target_crs_of(target_crs) if target_crs else src.crs
        if src.crs is None:
            raise ParameterError("TARGET_CRS", "the input raster has no CRS, so it cannot be reprojected.")
        kwargs = {"resolution": resolution} if resolution else {}
        transform, width, height = calculate_default_transform(src.crs, dst_crs, src.width, src.height,
                                                               *src.bounds, **kwargs)
        if resolution and min(width, height) < 2:  # a resolution meant in metres given for a CRS in degrees...
            units = "degrees" if dst_crs.is_geographic else (dst_crs.linear_units or "CRS units")
            raise ParameterError("TARGET_RESOLUTION", f"{resolution:g} {units} would make the raster {width} x "
                                                      f"{height} pixel(s) in {dst_crs.to_string()}: the resolution "
                                                      f"is in the units of the target CRS ({units}). Give a finer "
                                                      "one, or a projected TARGET_CRS (e.g. a UTM zone) for metres.")
        with WarpedVRT(src, crs=dst_crs, transform=transform, width=width, height=height,
                       resampling=rasterio.enums.Resampling.bilinear, src_nodata=src.nodata,
                       nodata=src.nodata) as vrt:
            yield vrt


def check_sources_exist(src, parameter: str = "INPUT") -> None:
    """Refuse, before any work, a raster whose source files are gone (a VRT's): GDAL opens it and fails at the
    first read of the missing part."""
    missing = [f for f in src.files[1:] if not f.startswith("/vsi") and not os.path.exists(f)]
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise ParameterError(parameter, f"{src.name} refers to {len(missing)} file(s) that do not exist: {shown}. "
                                        "Restore them, or rebuild the raster (a VRT) from the files there are.")


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
        which = f"{number_list(complex_bands)} ({src.dtypes[complex_bands[0] - 1]})"
        raise ParameterError(parameter, f"{Path(src.name).name} has complex-valued band(s) {which}; IAMAP reads "
                                        "real values and would lose the imaginary part. Split the raster first into "
                                        "real and imaginary bands, or amplitude and phase, e.g. with GDAL's raster "
                                        "calculator (Processing: GDAL > Raster miscellaneous > Raster calculator, or "
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
        raise ParameterError(parameter, f"band(s) {number_list(wrong)} do not exist: the raster has {src.count} "
                                        f"band(s), numbered 1 to {src.count}.")
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
    data, valid = read_padded_native(src, bands, window, row_off, height, col_off, width, np.float32)
    return data, np.ones(data.shape, bool) if valid is None else valid


def read_padded_native(src, bands: list[int], window: Window, row_off: int, height: int, col_off: int, width: int,
                       dtype=None):
    """:func:`read_padded` in the bands' own data type (or ``dtype``), with ``valid`` None when every pixel is
    valid: integer bands without a nodata value and nothing padded are never compared pixel by pixel.

    Padding is zeros marked invalid.
    """
    dtype = np.dtype(dtype or np.result_type(*(src.dtypes[b - 1] for b in bands)))
    r0, r1 = max(row_off, 0), min(row_off + height, window.height)
    c0, c1 = max(col_off, 0), min(col_off + width, window.width)
    if r0 >= r1 or c0 >= c1:
        return np.zeros((len(bands), height, width), dtype), np.zeros((len(bands), height, width), bool)
    read = Window(window.col_off + c0, window.row_off + r0, c1 - c0, r1 - r0)
    block = src.read(bands, window=read, out_dtype=dtype)
    ok = valid_pixels(src, bands, block)
    if block.shape == (len(bands), height, width):  # nothing to pad: no copy
        return block, ok
    data = np.zeros((len(bands), height, width), dtype)
    valid = np.zeros((len(bands), height, width), bool)
    data[:, r0 - row_off:r1 - row_off, c0 - col_off:c1 - col_off] = block
    valid[:, r0 - row_off:r1 - row_off, c0 - col_off:c1 - col_off] = True if ok is None else ok
    return data, valid


def valid_pixels(src, bands: list[int], block: np.ndarray):
    """Per-band validity of ``block`` (bands, h, w) read from ``src``: False on the band's nodata value and on
    NaN/inf. None when nothing can be invalid (integer data, no nodata value in the bands' range)."""
    floating = block.dtype.kind == "f"
    nodatas = [src.nodatavals[band - 1] for band in bands]
    if not floating:  # an integer band cannot hold NaN, nor a nodata value outside its range or with a fraction
        info = np.iinfo(block.dtype)
        nodatas = [n if n is not None and not math.isnan(n) and float(n).is_integer() and info.min <= n <= info.max
                   else None for n in nodatas]
        if all(n is None for n in nodatas):
            return None
    ok = np.isfinite(block) if floating else np.ones(block.shape, bool)
    for i, nodata in enumerate(nodatas):
        if nodata is not None and not math.isnan(nodata):
            ok[i] &= block[i] != block.dtype.type(nodata)
    return ok


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
