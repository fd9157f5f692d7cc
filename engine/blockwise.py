"""Apply a pixel-wise function to a whole raster window, strip by strip, into a new GeoTIFF.

Serves every tool that maps pixel vectors to new values (reduction, cluster, ml): memory is one strip and
what the function holds, never the raster. The output is written as ``out.partial.tif`` and only takes its
final name when complete (:func:`engine.rasters.finalize`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio

from .destinations import ensure_space, partial_path
from .raster_writing import OUTPUT_OPTIONS, RowWriter
from .rasters import iter_strips, strip_rows, window_transform

#: Integer outputs (labels) are not floating point: no floating-point predictor.
INTEGER_OPTIONS = dict(OUTPUT_OPTIONS, predictor=2)


def apply_to_raster(src, bands: list[int], window, output: Path, count: int, dtype: str, nodata, function,
                    reporter, descriptions=(), tags=None, on_block=None) -> Path:
    """Write ``function(pixels)`` for every valid pixel of ``window`` to ``output``'s partial file.

    Parameters
    ----------
    function : callable
        (n, bands) float32 -> (n, count) or (n,) values, for valid pixels only.
    nodata
        Written where any selected band is invalid.
    on_block : callable(inputs, outputs) or None
        Sees the valid pixels of every strip and what ``function`` made of them (the tool's running figures:
        cluster sizes, a sample for value ranges and scores).

    Returns the partial file; the caller finalizes it.
    """
    ensure_space("OUTPUT", output, window.width * window.height * count * np.dtype(dtype).itemsize, reporter)
    partial = partial_path(output)
    partial.unlink(missing_ok=True)  # a cancelled run's: nothing resumes it
    floating = np.issubdtype(np.dtype(dtype), np.floating)
    profile = dict(OUTPUT_OPTIONS if floating else INTEGER_OPTIONS, width=window.width, height=window.height,
                   count=count, dtype=dtype, crs=src.crs, transform=window_transform(src, window), nodata=nodata)
    with rasterio.open(partial, "w", **profile) as dst:
        for band, description in enumerate(descriptions, start=1):
            dst.set_band_description(band, description)
        if tags:
            dst.update_tags(**tags)
    writer = RowWriter(partial)
    # the strip also holds the function's copies (scaled pixels, float64 distances): keep it smaller
    rows = max(1, strip_rows(window, len(bands)) // 2)
    for row, pixels, valid in iter_strips(src, bands, window, rows):
        height = len(valid) // window.width
        result = np.full((len(valid), count), nodata, dtype)
        if valid.any():
            inputs = pixels[valid]
            values = np.asarray(function(inputs))
            result[valid] = values.reshape(len(values), count)
            if on_block is not None:
                on_block(inputs, values)
        writer.add(row, result.T.reshape(count, height, window.width))
        reporter.progress(100 * (row + height) / window.height)
    writer.close()
    return partial
