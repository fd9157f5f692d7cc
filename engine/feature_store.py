"""The similarity explorer's features: every pixel of a raster loaded once for many similarity maps.

Memory is bounded by storing every pixel once as a float16 *unit* vector (cosine similarity needs only the
direction) in a memory-mapped file of the work folder: 2 bytes x bands x pixels (3 GiB for 2048 x 2048 x 384),
paged by the OS rather than held by the process, so a raster bigger than RAM still works, only slower (the
preview's copy adds a quarter). A click is then one float16 matrix-vector product over that array; the
references keep their raw values (read from the raster), so the prototype is the one the batch similarity tool
uses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from affine import Affine
from rasterio.windows import Window

from .rasters import grid_transform, iter_strips, strip_rows
from .similarity import cosine_similarity

#: Threads reading the raster at load (each with its own file handle).
READERS = 2
#: Pixels above which each map is preceded by a preview on every second row and column.
PREVIEW_PIXELS = 2**21


def read_ahead(src, bands: list[int], window: Window, readers: int = READERS):
    """:func:`engine.rasters.iter_strips` of ``src``, in order, with the next strips read meanwhile by ``readers``
    threads, each on its own handle of the file (a handle is not shared between threads). GDAL releases the GIL
    while it reads and de-interleaves, so reading overlaps itself and the normalisation: the load is bounded by
    the reads on all cores, not on one. Memory: ``readers`` + 1 strips of :data:`engine.rasters.STRIP_BYTES`."""
    import queue
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    import rasterio

    rows = strip_rows(window, len(bands))
    starts = list(range(0, window.height, rows))
    handles: queue.Queue = queue.Queue()
    opened = [src] + [rasterio.open(src.name) for _ in range(readers - 1)] if readers > 1 else [src]
    for handle in opened:
        handles.put(handle)

    def read(row: int):
        handle = handles.get()
        try:
            strip = Window(window.col_off, window.row_off + row, window.width, min(rows, window.height - row))
            _, pixels, valid = next(iter_strips(handle, bands, strip, rows))
            return row, pixels, valid
        finally:
            handles.put(handle)

    try:
        with ThreadPoolExecutor(readers) as pool:
            pending = deque(pool.submit(read, row) for row in starts[:readers])
            later = iter(starts[readers:])
            while pending:
                item = pending.popleft().result()
                row = next(later, None)
                if row is not None:
                    pending.append(pool.submit(read, row))
                yield item
    finally:
        for handle in opened[1:]:
            handle.close()


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

    def preview(self, path: Path) -> "Grid":
        """Every second row and column, copied row by row into the memory-mapped file ``path``."""
        import torch

        full = self.vectors.numpy().reshape(self.height, self.width, -1)
        height, width = (self.height + 1) // 2, (self.width + 1) // 2
        vectors = np.memmap(path, np.float16, "w+", shape=(height * width, full.shape[2]))
        for row in range(height):
            vectors[row * width:(row + 1) * width] = full[2 * row, ::2]
        valid = self.valid.reshape(self.height, self.width)[::2, ::2].ravel()
        return Grid(torch.from_numpy(vectors), valid, height, width, self.transform * Affine.scale(2))


class FeatureStore:
    """Every valid pixel of the raster as a float16 unit vector (:class:`Grid`), and its preview grid when the
    raster is large."""

    def __init__(self, src, bands: list[int], workdir: Path):
        import torch

        self.height, self.width, self.bands = src.height, src.width, bands
        self.transform, self.crs = grid_transform(src), src.crs
        self.window = Window(0, 0, src.width, src.height)
        self.valid = np.zeros(self.height * self.width, bool)
        vectors = np.memmap(workdir / "features.f16", np.float16, "w+", shape=(self.height * self.width, len(bands)))
        for row, pixels, valid in read_ahead(src, bands, self.window):
            start = row * self.width
            pixels = torch.from_numpy(pixels if valid.all() else np.where(valid[:, None], pixels, 0))
            vectors[start:start + len(valid)] = torch.nn.functional.normalize(pixels, dim=1, eps=1e-12).half().numpy()
            self.valid[start:start + len(valid)] = valid
        self.grid = Grid(torch.from_numpy(vectors), self.valid, self.height, self.width, self.transform)
        self.preview = self.grid.preview(workdir / "preview.f16") if self.valid.size > PREVIEW_PIXELS else None
