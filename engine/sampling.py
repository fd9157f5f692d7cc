"""Random samples of valid pixels, drawn in one strip-by-strip pass (:func:`engine.rasters.iter_strips`).

A pixel is valid when every selected band holds a finite value that is not the band's nodata value. The
sample is uniform over the valid pixels of the window and the same for the same seed. It is drawn in one
pass with a bounded reservoir (each valid pixel gets a random key; the ``size`` smallest keys are kept), so
memory is the sample plus one strip, whatever the raster size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rasterio.windows import Window

from .prefetch import prefetched
from .rasters import iter_strips
from .events import NULL_REPORTER


@dataclass
class PixelSample:
    """Pixel vectors drawn from a raster.

    Attributes
    ----------
    values : ndarray (n, bands) float32
    positions : ndarray (n,) int64
        Row-major pixel index inside the window (``row * width + col``), in increasing order.
    valid_pixels : int
        Valid pixels in the whole window (the population the sample was drawn from).
    """

    values: np.ndarray
    positions: np.ndarray
    valid_pixels: int


def sample_pixels(src, bands: list[int], window: Window, size: int, seed: int,
                  reporter=NULL_REPORTER) -> PixelSample:
    """A uniform random sample of at most ``size`` valid pixels of ``window`` (all of them when fewer)."""
    rng = np.random.default_rng(seed)
    size = min(size, window.width * window.height)  # a SAMPLE_SIZE beyond the pixels there are takes them all
    # The reservoir: ``size`` kept pixels plus room for candidates, compacted in place when full. Peak memory
    # is about 2.25 x the sample plus one strip, whatever the raster size.
    capacity = size + max(1024, size // 4)
    keys = np.empty(capacity, np.float64)
    values = np.empty((capacity, len(bands)), np.float32)
    positions = np.empty(capacity, np.int64)
    count, threshold, valid_pixels = 0, np.inf, 0

    def compact():
        nonlocal count, threshold
        keep = np.sort(np.argpartition(keys[:count], size - 1)[:size])
        keys[:size], values[:size], positions[:size] = keys[keep], values[keep], positions[keep]
        count, threshold = size, keys[:size].max()

    for row, pixels, valid in prefetched(iter_strips(src, bands, window)):
        index = np.flatnonzero(valid)
        valid_pixels += index.size
        # a key for every valid pixel, so the sample does not depend on the strip height
        strip_keys = rng.random(index.size)
        candidates = strip_keys < threshold  # only pixels that would enter the current reservoir
        index, strip_keys = index[candidates], strip_keys[candidates]
        while index.size:
            if count == capacity:
                compact()
                keep = strip_keys < threshold
                index, strip_keys = index[keep], strip_keys[keep]
                continue
            n = min(index.size, capacity - count)
            keys[count:count + n] = strip_keys[:n]
            values[count:count + n] = pixels[index[:n]]
            positions[count:count + n] = row * window.width + index[:n]
            count += n
            index, strip_keys = index[n:], strip_keys[n:]
        reporter.progress(100 * (row + len(valid) // window.width) / window.height)
    if count > size:
        compact()
    order = np.argsort(positions[:count])
    return PixelSample(values[:count][order], positions[:count][order], valid_pixels)


class RunningSample:
    """A random subset of the (input, output) pixel pairs of a block-wise pass, for figures computed after it
    (value ranges, silhouette score) without a second pass.

    Each pixel is kept with probability ``size / population``, so about ``size`` pixels are kept when
    ``population`` (an upper bound of the pixels seen: the window's pixel count) is reached.
    """

    def __init__(self, size: int, population: int, seed: int):
        self.rate = min(1.0, size / max(1, population))
        self.rng = np.random.default_rng(seed)
        self.inputs: list[np.ndarray] = []
        self.outputs: list[np.ndarray] = []

    def add(self, inputs: np.ndarray, outputs: np.ndarray) -> None:
        keep = self.rng.random(len(inputs)) < self.rate
        self.inputs.append(inputs[keep])
        self.outputs.append(outputs[keep])

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.inputs:
            return np.empty((0, 0), np.float32), np.empty(0)
        return np.concatenate(self.inputs), np.concatenate(self.outputs)
