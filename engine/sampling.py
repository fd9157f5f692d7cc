"""Random samples of valid pixels, and the strip-by-strip pass over a raster that every pixel-wise tool uses.

A pixel is valid when every selected band holds a finite value that is not the band's nodata value. The
sample is uniform over the valid pixels of the window and the same for the same seed. It is drawn in one
pass with a bounded reservoir (each valid pixel gets a random key; the ``size`` smallest keys are kept), so
memory is the sample plus one strip, whatever the raster size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rasterio.windows import Window

from .rasters import read_padded

#: Bytes of float32 pixel data per strip read: bounds the memory of every block-wise pass.
STRIP_BYTES = 64 * 2**20


def strip_rows(window: Window, band_count: int, strip_bytes: int = STRIP_BYTES) -> int:
    """Rows per strip so that one strip of ``band_count`` float32 bands stays under ``strip_bytes``."""
    return int(max(1, min(window.height, strip_bytes // max(1, window.width * band_count * 4))))


def iter_strips(src, bands: list[int], window: Window, rows: int | None = None):
    """Yield (first_row, pixels, valid) strip by strip: pixels (n, bands) float32, valid (n,) bool, row-major."""
    rows = rows or strip_rows(window, len(bands))
    for row in range(0, window.height, rows):
        height = min(rows, window.height - row)
        data, valid = read_padded(src, bands, window, row, height, 0, window.width)
        yield row, data.reshape(len(bands), -1).T, valid.all(axis=0).ravel()


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


def sample_pixels(src, bands: list[int], window: Window, size: int, seed: int, reporter=None) -> PixelSample:
    """A uniform random sample of at most ``size`` valid pixels of ``window`` (all of them when fewer)."""
    rng = np.random.default_rng(seed)
    kept: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (keys, values, positions) chunks
    kept_count, threshold, valid_pixels = 0, np.inf, 0

    def compact():
        nonlocal kept, kept_count, threshold
        keys, values, positions = (np.concatenate(part) for part in zip(*kept))
        if keys.size > size:
            keep = np.argpartition(keys, size - 1)[:size] if size > 0 else np.empty(0, np.int64)
            keys, values, positions = keys[keep], values[keep], positions[keep]
            threshold = keys.max() if keys.size else -np.inf
        kept, kept_count = [(keys, values, positions)], keys.size

    for row, pixels, valid in iter_strips(src, bands, window):
        index = np.flatnonzero(valid)
        valid_pixels += index.size
        # a key for every valid pixel, so the sample does not depend on the strip height
        keys = rng.random(index.size)
        candidates = keys < threshold  # pixels that would enter the current reservoir
        if candidates.any():
            index, keys = index[candidates], keys[candidates]
            kept.append((keys, pixels[index], row * window.width + index))
            kept_count += keys.size
            if kept_count > 2 * max(size, 1):  # amortised: the reservoir is copied only O(log N) times
                compact()
        if reporter is not None:
            reporter.progress(100 * (row + len(valid) // window.width) / window.height)
    if not kept:
        return PixelSample(np.empty((0, len(bands)), np.float32), np.empty(0, np.int64), valid_pixels)
    compact()
    keys, values, positions = kept[0]
    order = np.argsort(positions)
    return PixelSample(values[order], positions[order], valid_pixels)


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
