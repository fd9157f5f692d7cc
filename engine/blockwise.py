"""Apply a pixel-wise function to a whole raster window, strip by strip, into a new GeoTIFF.

Serves every tool that maps pixel vectors to new values (reduction, cluster, ml): memory is one strip and
what the function holds, never the raster. The output is written as ``out.partial.tif`` and only takes its
final name when complete (:func:`engine.rasters.finalize`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio

from .destinations import ensure_space, partial_path
from .raster_writing import OUTPUT_OPTIONS, RowWriter
from .prefetch import prefetched
from .rasters import iter_strips, strip_rows, window_transform

#: Integer outputs (labels) are not floating point: no floating-point predictor.
INTEGER_OPTIONS = dict(OUTPUT_OPTIONS, predictor=2)


@dataclass(frozen=True)
class RasterTarget:
    """One output raster of a block-wise pass: file, band count, data type, nodata, band descriptions, and the
    parameter that names it in errors."""

    output: Path
    count: int
    dtype: str
    nodata: object
    descriptions: tuple = ()
    parameter: str = "OUTPUT"


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
    target = RasterTarget(output, count, dtype, nodata, tuple(descriptions))
    return apply_to_rasters(src, bands, window, [target], lambda pixels: (function(pixels),), reporter, tags,
                            None if on_block is None else lambda inputs, values: on_block(inputs, values[0]))[0]


def apply_to_rasters(src, bands: list[int], window, targets: list[RasterTarget], function, reporter, tags=None,
                     on_block=None) -> list[Path]:
    """:func:`apply_to_raster` with several outputs from one call per strip: ``function(pixels)`` returns one
    array per target (a class and its probability...). Returns the partial files, in the order of ``targets``."""
    for target in targets:
        ensure_space(target.parameter, target.output, window.width * window.height * target.count *
                     np.dtype(target.dtype).itemsize, reporter)
    partials, writers = [], []
    for target in targets:
        partial = partial_path(target.output)
        partial.unlink(missing_ok=True)  # a cancelled run's: nothing resumes it
        floating = np.issubdtype(np.dtype(target.dtype), np.floating)
        profile = dict(OUTPUT_OPTIONS if floating else INTEGER_OPTIONS, width=window.width, height=window.height,
                       count=target.count, dtype=target.dtype, crs=src.crs, transform=window_transform(src, window),
                       nodata=target.nodata)
        with rasterio.open(partial, "w", **profile) as dst:
            for band, description in enumerate(target.descriptions, start=1):
                dst.set_band_description(band, description)
            if tags:
                dst.update_tags(**tags)
        partials.append(partial)
        writers.append(RowWriter(partial))
    # the strip also holds the function's copies (scaled pixels, float64 distances): keep it smaller
    rows = max(1, strip_rows(window, len(bands)) // 2)
    for row, pixels, valid in prefetched(iter_strips(src, bands, window, rows)):
        height = len(valid) // window.width
        inputs = pixels[valid]
        values = [np.asarray(v) for v in function(inputs)] if valid.any() else None
        for index, (target, writer) in enumerate(zip(targets, writers)):
            result = np.full((len(valid), target.count), target.nodata, target.dtype)
            if values is not None:
                result[valid] = values[index].reshape(len(values[index]), target.count)
            writer.add(row, result.T.reshape(target.count, height, window.width))
        if values is not None and on_block is not None:
            on_block(inputs, values)
        reporter.progress(100 * (row + height) / window.height)
    for writer in writers:
        writer.close()
    return partials
