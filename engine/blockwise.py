"""Apply a pixel-wise function to a whole raster window, strip by strip, into a new GeoTIFF.

Serves every tool that maps pixel vectors to new values (reduction, cluster, ml): memory is one strip and
what the function holds, never the raster. The output is written as ``out.partial.tif`` and only takes its
final name when complete (:func:`engine.raster_writing.finalize`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio

from .destinations import ensure_space, partial_path
from .errors import ParameterError
from .raster_writing import OUTPUT_OPTIONS, RowWriter
from .pixel_functions import PixelFunction
from .prefetch import prefetched
from .rasters import iter_strips, strip_rows, window_transform
from .scale_out import PREDICTION_PACKAGES, cluster_client, cluster_strips

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
                    reporter, descriptions=(), tags=None, on_block=None, scheduler: str = "",
                    with_inputs: bool = False) -> Path:
    """Write ``function(pixels)`` for every valid pixel of ``window`` to ``output``'s partial file.

    Parameters
    ----------
    function : callable or PixelFunction
        (n, bands) float32 -> (n, count) or (n,) values, for valid pixels only. A :class:`PixelFunction` (a
        one-array tuple) is needed with ``scheduler``.
    nodata
        Written where any selected band is invalid.
    on_block : callable(inputs, outputs) or None
        Sees the valid pixels of every strip and what ``function`` made of them (the tool's running figures:
        cluster sizes, a sample for value ranges and scores).

    Returns the partial file; the caller finalizes it.
    """
    target = RasterTarget(output, count, dtype, nodata, tuple(descriptions))
    if not isinstance(function, PixelFunction):
        function = _one_output(function)
    return apply_to_rasters(src, bands, window, [target], function, reporter, tags,
                            None if on_block is None else lambda inputs, values: on_block(inputs, values[0]),
                            scheduler, with_inputs)[0]


def create_partial(target: RasterTarget, crs, transform, width: int, height: int, tags=None) -> Path:
    """The empty partial file of ``target`` on the grid (``crs``, ``transform``, ``width`` x ``height``), with its
    band descriptions and ``tags``; a cancelled run's partial file is replaced (nothing resumes it)."""
    partial = partial_path(target.output)
    partial.unlink(missing_ok=True)
    floating = np.issubdtype(np.dtype(target.dtype), np.floating)
    profile = dict(OUTPUT_OPTIONS if floating else INTEGER_OPTIONS, width=width, height=height, count=target.count,
                   dtype=target.dtype, crs=crs, transform=transform, nodata=target.nodata)
    with rasterio.open(partial, "w", **profile) as dst:
        for band, description in enumerate(target.descriptions, start=1):
            dst.set_band_description(band, description)
        if tags:
            dst.update_tags(**tags)
    return partial


def _one_output(function):
    return lambda pixels: (function(pixels),)


def apply_to_rasters(src, bands: list[int], window, targets: list[RasterTarget], function, reporter, tags=None,
                     on_block=None, scheduler: str = "", with_inputs: bool = False) -> list[Path]:
    """:func:`apply_to_raster` with several outputs from one call per strip: ``function(pixels)`` returns one
    array per target (a class and its probability...). Returns the partial files, in the order of ``targets``.

    With ``scheduler`` (SCHEDULER) the strips are computed by the workers of that Dask cluster
    (:func:`engine.scale_out.cluster_strips`; ``function`` must be a :class:`PixelFunction`) and written here in
    order, the same file as on this machine. ``on_block`` then gets ``inputs=None`` unless ``with_inputs`` (they
    travel back from the workers with the values)."""
    for target in targets:
        ensure_space(target.parameter, target.output, window.width * window.height * target.count *
                     np.dtype(target.dtype).itemsize, reporter)
    partials = [create_partial(target, src.crs, window_transform(src, window), window.width, window.height, tags)
                for target in targets]
    writers = [RowWriter(partial) for partial in partials]
    # the strip also holds the function's copies (scaled pixels, float64 distances): keep it smaller
    rows = max(1, strip_rows(window, len(bands)) // 2)
    with _strips(src, bands, window, rows, function, scheduler, with_inputs, reporter) as strips:
        mapped = _write_strips(strips, window, targets, writers, on_block, reporter)
    for writer in writers:
        writer.close()
    if not mapped:  # an output of nodata only is no result: said, and not left behind
        for partial in partials:
            partial.unlink(missing_ok=True)
        whole = (window.width, window.height) == (src.width, src.height)
        raise ParameterError("INPUT" if whole else "EXTENT",
                             f"no pixel of the {'raster' if whole else 'selected extent'} is valid in the selected "
                             f"band(s) {', '.join(map(str, bands))} (all nodata), so the output would hold nodata "
                             "only. Check the bands' nodata value and BANDS" + ("." if whole else ", or choose "
                                                                                               "another EXTENT."))
    return partials


@contextlib.contextmanager
def _strips(src, bands, window, rows: int, function, scheduler: str, with_inputs: bool, reporter):
    """(first row, height, valid, inputs, values) per strip, computed here or by the workers of ``scheduler``."""
    if not scheduler:
        strips = _local_strips(src, bands, window, rows, function)
        try:
            yield strips
        finally:
            strips.close()  # stops the reader thread
        return
    if not isinstance(function, PixelFunction):
        raise TypeError("a cluster runs PixelFunctions only")
    with cluster_client(scheduler, PREDICTION_PACKAGES, reporter) as (client, reports):
        strips = cluster_strips(client, reports, function, src.name, bands, window, rows, with_inputs, reporter)
        try:
            yield strips
        finally:
            strips.close()


def _local_strips(src, bands, window, rows: int, function):
    for row, pixels, valid in prefetched(iter_strips(src, bands, window, rows)):
        inputs = pixels[valid]
        values = [np.asarray(v) for v in function(inputs)] if valid.any() else None
        yield row, len(valid) // window.width, valid, inputs, values


def _write_strips(strips, window, targets: list[RasterTarget], writers: list[RowWriter], on_block, reporter) -> int:
    """Write every strip; returns the count of valid (mapped) pixels."""
    mapped = 0
    for row, height, valid, inputs, values in strips:
        mapped += int(np.count_nonzero(valid))
        for index, (target, writer) in enumerate(zip(targets, writers)):
            result = np.full((len(valid), target.count), target.nodata, target.dtype)
            if values is not None:
                result[valid] = values[index].reshape(len(values[index]), target.count)
            writer.add(row, result.T.reshape(target.count, height, window.width))
        if values is not None and on_block is not None:
            on_block(inputs, values)
        reporter.progress(100 * (row + height) / window.height)
    return mapped
