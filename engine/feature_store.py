"""The similarity explorer's features: every pixel of a raster loaded once for many similarity maps.

Memory is bounded by storing every pixel once as a float16 *unit* vector (cosine similarity needs only the
direction) in a memory-mapped file of the work folder: 2 bytes x bands x pixels (3 GiB for 2048 x 2048 x 384),
paged by the OS rather than held by the process, so a raster bigger than RAM still works, only slower (the
preview's copy adds a quarter). A click is then one float16 matrix-vector product over that array; the
references keep their raw values (read from the raster), so the prototype is the one the batch similarity tool
uses.

Loading is one pass over the raster in full-width strips, :data:`READERS` strips at a time, each thread with its
own file handle: GDAL reads a strip straight into pixel-major order (what a pixel-interleaved feature raster
already is: a copy, not a transpose), then the strip's norms give both the unit vectors and the nodata test (a
NaN or infinite band makes the norm so), and the unit vectors go to the store and, every second row and column,
to the preview. GDAL and torch release the GIL, so the threads share the cores.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from affine import Affine
from rasterio.windows import Window

from .rasters import grid_transform, strip_rows
from .similarity import cosine_similarity

#: Threads loading the raster (each reads and normalises its own strips, with its own file handle).
READERS = 2
#: Pixels above which each map is preceded by a preview on every second row and column.
PREVIEW_PIXELS = 2**21


def read_pixels(src, bands: list[int], window: Window, out: np.ndarray | None = None) -> np.ndarray:
    """``window`` of ``src`` as float32 pixels (height, width, bands), pixel-major: GDAL writes that layout itself
    (``out``, when given, is filled and returned)."""
    shape = (int(window.height), int(window.width), len(bands))
    out = np.empty(shape, np.float32) if out is None else out[:shape[0]]
    src.read(bands, window=window, out=out.transpose(2, 0, 1))
    return out


def unit_vectors(pixels: np.ndarray, out: np.ndarray, nodata: np.ndarray | None = None) -> np.ndarray:
    """Write the unit vectors of ``pixels`` (n, bands) float32 into ``out`` (n, bands) float16, zero vectors for
    the invalid pixels, and return which are valid (n,): every band finite and none equal to its value in
    ``nodata`` (bands,) (NaN where a band has none), as :func:`engine.rasters.valid_pixels` decides."""
    import torch

    values = torch.from_numpy(pixels)
    norms = torch.linalg.vector_norm(values, dim=1)
    valid = torch.isfinite(norms).numpy()  # a NaN or infinite band makes the norm so: one test per pixel
    suspect = np.flatnonzero(~valid)
    huge = suspect[np.isfinite(pixels[suspect]).all(axis=1)]  # finite bands whose squares overflow float32
    valid[huge] = True
    if nodata is not None and not np.isnan(nodata).all():
        used = np.flatnonzero(~np.isnan(nodata))
        valid &= ~(pixels[:, used] == nodata[used]).any(axis=1)
    torch.mul(values, (1 / norms.clamp_min(1e-12))[:, None], out=torch.from_numpy(out))
    if len(huge):
        exact = pixels[huge].astype(np.float64)
        out[huge] = exact / np.linalg.norm(exact, axis=1, keepdims=True)
    if not valid.all():
        out[~valid] = 0
    return valid


class Grid:
    """Pixels as float16 unit vectors (pixels, bands) row-major (a torch tensor over a memory-mapped file), which
    are valid, and where they are: the raster's own grid or the preview's coarser one."""

    def __init__(self, vectors, valid: np.ndarray, height: int, width: int, transform):
        self.vectors, self.valid, self.height, self.width, self.transform = vectors, valid, height, width, transform

    def similarity(self, references: np.ndarray, aggregation: str) -> np.ndarray:
        """The (height, width) float32 map of cosine similarity to ``references`` (n, bands), NaN on nodata."""
        import torch

        # one product over all pixels (``max`` bounds its own temporaries): splitting it only adds copies
        result = cosine_similarity(self.vectors, torch.from_numpy(references), aggregation, unit_pixels=True)
        result = result.float().numpy()
        np.clip(result, -1, 1, out=result)  # float16 rounding reaches 1.001
        result[~self.valid] = np.nan
        return result.reshape(self.height, self.width)


class FeatureStore:
    """Every valid pixel of the raster as a float16 unit vector (:class:`Grid`), and its preview grid (every second
    row and column) when the raster is large."""

    def __init__(self, src, bands: list[int], workdir: Path, readers: int = READERS):
        import torch

        self.height, self.width, self.bands = src.height, src.width, bands
        self.transform, self.crs = grid_transform(src), src.crs
        self.window = Window(0, 0, src.width, src.height)
        height, width, count = self.height, self.width, len(bands)
        self.valid = np.zeros(height * width, bool)
        vectors = np.memmap(workdir / "features.f16", np.float16, "w+", shape=(height * width, count))
        preview_shape = ((height + 1) // 2, (width + 1) // 2)
        preview = preview_valid = None
        if self.valid.size > PREVIEW_PIXELS:
            preview = np.memmap(workdir / "preview.f16", np.float16, "w+", shape=(math.prod(preview_shape), count))
            preview_valid = np.zeros(math.prod(preview_shape), bool)
        nodata = np.array([np.nan if src.nodatavals[b - 1] is None else src.nodatavals[b - 1] for b in bands],
                          np.float32)
        rows = max(2, strip_rows(self.window, count) // 2 * 2)  # even: every strip starts on a preview row

        import rasterio

        handles = [src] + [rasterio.open(src.name) for _ in range(readers - 1)]
        buffers = [np.empty((rows, width, count), np.float32) for _ in handles]

        failed: list[BaseException] = []

        def load(reader: int) -> None:
            handle, buffer = handles[reader], buffers[reader]
            try:
                for row in range(reader * rows, height, rows * len(handles)):
                    if failed:  # another reader failed: its error is raised, no use going on
                        return
                    strip = read_pixels(handle, bands, Window(0, row, width, min(rows, height - row)), buffer)
                    start, end = row * width, (row + strip.shape[0]) * width
                    self.valid[start:end] = unit_vectors(strip.reshape(-1, count), vectors[start:end], nodata)
                    if preview is not None:  # rows and columns 0, 2, 4... of the strip (it starts on an even row)
                        first = row // 2 * preview_shape[1]
                        units = vectors[start:end].reshape(-1, width, count)[::2, ::2]
                        preview[first:first + units.shape[0] * units.shape[1]] = units.reshape(-1, count)
                        preview_valid[first:first + units.shape[0] * units.shape[1]] = \
                            self.valid[start:end].reshape(-1, width)[::2, ::2].ravel()
            except BaseException as exc:
                failed.append(exc)

        threads = torch.get_num_threads()
        try:
            torch.set_num_threads(max(1, threads // len(handles)))  # the readers share the cores already
            with ThreadPoolExecutor(len(handles)) as pool:
                for reader in range(len(handles)):
                    pool.submit(load, reader)
            if failed:
                raise failed[0]
        finally:
            torch.set_num_threads(threads)
            for handle in handles[1:]:
                handle.close()
        self.grid = Grid(torch.from_numpy(vectors), self.valid, height, width, self.transform)
        self.preview = None if preview is None else Grid(torch.from_numpy(preview), preview_valid, *preview_shape,
                                                         self.transform * Affine.scale(2))
