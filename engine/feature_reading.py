"""Reading a feature raster for the similarity explorer's store, as fast as its layout allows: GDAL straight into
pixel-major order (:func:`read_pixels`), or the blocks of the encoder's uncompressed outputs read from the file as
they lie (:class:`RawTiles`).
"""

from __future__ import annotations

import numpy as np
from rasterio.enums import Interleaving
from rasterio.windows import Window


def read_pixels(src, bands: list[int], window: Window, out: np.ndarray | None = None) -> np.ndarray:
    """``window`` of ``src`` as float32 pixels (height, width, bands), pixel-major: GDAL writes that layout itself
    (``out``, when given, is filled and returned)."""
    shape = (int(window.height), int(window.width), len(bands))
    out = np.empty(shape, np.float32) if out is None else out[:shape[0]]
    src.read(bands, window=window, out=out.transpose(2, 0, 1))
    return out


class RawTiles:
    """Where the blocks of an uncompressed, pixel-interleaved, little-endian float32 or float16 (GDAL's NBITS=16)
    GeoTIFF lie in the file, so that they are read as they are: a block is already pixel-major, so reading it is a
    copy (float16: a conversion), with none of GDAL's per-block work (float16 through GDAL is five times slower).
    :meth:`of` gives None for any other raster (read through GDAL)."""

    def __init__(self, path: str, dtype, block: tuple[int, int], offsets: np.ndarray, sizes: np.ndarray,
                 fill: float, bands: int):
        self.path, self.dtype, self.block, self.offsets, self.sizes = path, np.dtype(dtype), block, offsets, sizes
        self.fill, self.bands = fill, bands

    @classmethod
    def of(cls, src, bands: list[int]) -> RawTiles | None:
        """The blocks of ``src`` (all its ``bands``), or None when it is not such a GeoTIFF."""
        if src.driver != "GTiff" or src.compression is not None or list(bands) != list(range(1, src.count + 1)):
            return None
        if (src.count > 1 and src.interleaving != Interleaving.pixel) or set(src.dtypes) != {"float32"}:
            return None
        dtype = {None: "<f4", "16": "<f2"}.get(src.tags(1, ns="IMAGE_STRUCTURE").get("NBITS"), None)
        block_rows, block_cols = src.block_shapes[0]
        if dtype is None or len(set(src.block_shapes)) != 1 or block_rows % 2:
            return None
        try:
            with open(src.name, "rb") as f:
                if f.read(2) != b"II":
                    return None
        except OSError:
            return None
        across, down = -(-src.width // block_cols), -(-src.height // block_rows)
        offsets, sizes = np.zeros((down, across), np.int64), np.zeros((down, across), np.int64)
        for y in range(down):
            rows = min(block_rows, src.height - y * block_rows)
            for x in range(across):
                offset = src.get_tag_item(f"BLOCK_OFFSET_{x}_{y}", "TIFF", bidx=1)
                size = src.get_tag_item(f"BLOCK_SIZE_{x}_{y}", "TIFF", bidx=1)
                offsets[y, x], sizes[y, x] = int(offset or 0), int(size or 0)
                whole = block_rows * block_cols * src.count * np.dtype(dtype).itemsize
                # a tile is whole; the last strip of a striped file may be shorter; 0: never written (sparse)
                if sizes[y, x] not in (0, whole, rows * block_cols * src.count * np.dtype(dtype).itemsize):
                    return None
        fill = 0.0 if src.nodata is None else src.nodata  # what GDAL gives for a block never written
        return cls(src.name, dtype, (block_rows, block_cols), offsets, sizes, fill, src.count)

    def read(self, f, row: int, height: int, out: np.ndarray) -> np.ndarray:
        """Rows ``row`` (a multiple of the block height) to ``row + height`` as float32 (height, width, bands)
        into ``out``, from the open file ``f``."""
        block_rows, block_cols = self.block
        out = out[:height]
        width = out.shape[1]
        for y in range(row // block_rows, -(-(row + height) // block_rows)):
            top = y * block_rows - row
            rows = min(block_rows, height - top)
            for x in range(self.offsets.shape[1]):
                cols = min(block_cols, width - x * block_cols)
                target = out[top:top + rows, x * block_cols:x * block_cols + cols]
                if not self.sizes[y, x]:
                    target[...] = self.fill
                    continue
                f.seek(self.offsets[y, x])
                data = np.frombuffer(f.read(self.sizes[y, x]), self.dtype).reshape(-1, block_cols, self.bands)
                target[...] = data[:rows, :cols]
        return out
