"""The similarity explorer's feature store loaded in a background thread (:class:`StoreLoading`), and the first
map answered meanwhile (importing torch alone takes over a second): every :func:`preview_step`-th row and column
of the raster, read by GDAL's decimated read (an uncompressed raster gives only those pixels, a fraction of the
file), compared in numpy (:func:`engine.cosine.cosine_similarity_numpy`). The full map follows once the store is
loaded.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import Resampling

from .cosine import cosine_similarity_numpy
from .rasters import grid_transform, open_raster, valid_pixels

#: Pixels of the first map, at most (65 536: a 1024 x 1024 raster is read every fourth row and column).
PREVIEW_PIXELS = 2**16


def preview_step(height: int, width: int) -> int:
    """Rows and columns between the first map's pixels: the smallest step within :data:`PREVIEW_PIXELS`."""
    return max(1, math.ceil(math.sqrt(height * width / PREVIEW_PIXELS)))


def reads_coarsely(src) -> bool:
    """Whether GDAL reads every n-th pixel of ``src`` straight from the file: an uncompressed GeoTIFF of whole
    bytes (the encoder's default output). Others (compressed, float16) decode every block whole, no faster than
    the store's load: no coarse map then."""
    return (src.driver == "GTiff" and src.compression is None
            and not src.tags(1, ns="IMAGE_STRUCTURE").get("NBITS"))


def coarse_similarity(src, bands: list[int], references: np.ndarray, aggregation: str) -> tuple[np.ndarray, Affine]:
    """The (rows, cols) float32 similarity map of every :func:`preview_step`-th pixel of ``src`` to ``references``
    (n, bands), NaN on nodata, and its geotransform."""
    step = preview_step(src.height, src.width)
    rows, cols = -(-src.height // step), -(-src.width // step)
    # GTIFF_DIRECT_IO (read when a file is opened: a handle of its own): an uncompressed GeoTIFF's decimated read
    # takes only the pixels asked, forty times faster than through GDAL's block cache, which reads every block
    with rasterio.Env(GTIFF_DIRECT_IO=True), rasterio.open(src.name) as direct:
        block = direct.read(bands, out_shape=(len(bands), rows, cols), resampling=Resampling.nearest,
                            out_dtype=np.float32)
    ok = valid_pixels(src, bands, block)
    valid = np.ones((rows, cols), bool) if ok is None else ok.all(axis=0)
    pixels = block.reshape(len(bands), -1).T
    values = np.full(rows * cols, np.nan, np.float32)
    if valid.any():
        values[valid.ravel()] = cosine_similarity_numpy(pixels[valid.ravel()], references, aggregation)
    np.clip(values, -1, 1, out=values)
    transform = grid_transform(src) * Affine.scale(src.width / cols, src.height / rows)
    return values.reshape(rows, cols), transform


class StoreFailed(Exception):
    """The feature store could not be loaded (the ``ready`` reply said why): the session ends."""


class StoreLoading:
    """Loads the :class:`engine.feature_store.FeatureStore` of a raster in a background thread, with its own
    dataset handle (GDAL handles are not shared between threads), then calls ``loaded(store, error)``."""

    def __init__(self, path: str, bands: list[int], workdir: Path, cache: Path | None, loaded):
        self._store, self._error, self._done = None, None, threading.Event()

        def load():
            try:
                from .feature_store import FeatureStore  # deferred: torch's import is most of the load

                with open_raster(path) as src:
                    self._store = FeatureStore(src, bands, workdir, cache=cache)
            except BaseException as exc:  # told through ``loaded``; requests waiting for the store then end
                self._error = exc
            loaded(self._store, self._error)
            self._done.set()

        self.thread = threading.Thread(target=load, daemon=True, name="iamap-explorer-load")
        self.thread.start()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def close(self) -> None:
        """Wait for the load to end, then close the store (a cache still being written is dropped)."""
        self.thread.join()
        if self._store is not None:
            self._store.close()

    def store(self):
        """The store, once loaded (waits); raises :class:`StoreFailed` if it could not be."""
        self._done.wait()
        if self._store is None:
            raise StoreFailed(str(self._error))
        return self._store
