"""Merging the feature blocks of overlapping tiles into output rows (see ``catalog.MERGE_METHODS``).

``average``  true weighted mean (sum and count) of every tile covering a cell.
``first`` / ``last``  the value from the first / last tile (in reading order) covering a cell.
``min`` / ``max``  per-feature minimum / maximum over the covering tiles.
``centre``  each cell from the tile whose centre region holds it: seamless, no averaging.
``cosine``  weighted mean with a cosine (Hann) window, tile borders weigh least: removes seams.

Only the output rows that tiles can still touch are held (one tile height plus one step), so memory is
bounded by a band of tiles whatever the raster size.
"""

from __future__ import annotations

import numpy as np

from .catalog import MERGE_METHODS
from .errors import ParameterError
from .tiling import TileGrid

_WEIGHTED = ("average", "centre", "cosine")
#: Weight of cells outside a tile's centre region: they only count where no centre region reaches.
_OUTSIDE = 1e-6


def tile_weights(method: str, grid: TileGrid) -> np.ndarray:
    """Weight of each feature cell of a tile (grid_h, grid_w) for MERGE_METHOD ``method``."""
    gh, gw = grid.grid_h, grid.grid_w
    if method == "cosine":
        wy = np.sin(np.pi * (np.arange(gh) + 0.5) / gh) ** 2
        wx = np.sin(np.pi * (np.arange(gw) + 0.5) / gw) ** 2
        return (np.outer(wy, wx) + 1e-3).astype(np.float32)
    weights = np.ones((gh, gw), np.float32)
    if method == "centre":
        weights[:] = _OUTSIDE
        top, left = (gh - grid.step_h) // 2, (gw - grid.step_w) // 2
        weights[top:top + grid.step_h, left:left + grid.step_w] = 1
    return weights


class FeatureStrip:
    """Accumulator for the open output rows.

    Held channels-last (rows, width, dim), as the model's tokens come out and as the pixel-interleaved output
    stores them, so merging and writing move whole feature vectors. Without overlap (STRIDE = SIZE) every cell
    has one tile and every method keeps its features as they are: they are copied, never weighted and divided.

    Parameters
    ----------
    grid : TileGrid
    dim : int
        Feature dimension (output bands).
    method : str
        One of ``catalog.MERGE_METHODS``.
    first_tile_row : int
        The tile row processing starts at (not 0 when resuming).
    """

    def __init__(self, grid: TileGrid, dim: int, method: str, first_tile_row: int = 0):
        if method not in MERGE_METHODS:
            raise ParameterError("MERGE_METHOD", f"unknown method {method!r}; choose one of "
                                                 f"{', '.join(MERGE_METHODS)}.")
        self.grid, self.dim, self.method = grid, dim, method
        self.single_cover = grid.step_h == grid.grid_h and grid.step_w == grid.grid_w
        self.base = first_tile_row * grid.step_h  # output row of buffer row 0
        self.rows = grid.grid_h + grid.step_h
        width = grid.out_width
        self.values = np.zeros((self.rows, width, dim), np.float32)
        self.weights = np.zeros((self.rows, width), np.float32)  # summed weights, or tile counts
        self.tile_weights = tile_weights(method, grid)

    def add(self, features: np.ndarray, cell_valid: np.ndarray, tile_row: int, tile_col: int) -> None:
        """Merge one tile's ``features`` (dim, grid_h, grid_w); cells where ``cell_valid`` is False are skipped."""
        g = self.grid
        top = tile_row * g.step_h - self.base
        left = tile_col * g.step_w
        h = min(g.grid_h, g.out_height - (top + self.base), self.rows - top)
        w = min(g.grid_w, g.out_width - left)
        if h <= 0 or w <= 0:
            return
        feats = np.moveaxis(features, 0, -1)[:h, :w]  # (h, w, dim): a view, contiguous for channels-last input
        valid = cell_valid[:h, :w]
        values = self.values[top:top + h, left:left + w]
        seen = self.weights[top:top + h, left:left + w]
        if self.single_cover:
            if valid.all():
                values[...] = feats
            else:
                values[valid] = feats[valid]
            seen += valid
            return
        if self.method in _WEIGHTED:
            weight = self.tile_weights[:h, :w] * valid
            values += feats * weight[..., None]
            seen += weight
            return
        if self.method == "last":
            take = valid[..., None]
        elif self.method == "first":
            take = (valid & (seen == 0))[..., None]
        else:
            better = feats < values if self.method == "min" else feats > values
            take = valid[..., None] & ((seen == 0)[..., None] | better)  # per feature for min/max
        np.copyto(values, feats, where=np.broadcast_to(take, values.shape))
        seen += valid

    def pop_rows(self, end_row: int) -> tuple[int, np.ndarray]:
        """Hand out the finished output rows from the buffer start up to ``end_row`` (exclusive).

        Returns the output row of the first row handed out and a C-contiguous array (dim, k, out_width), as
        rasterio writes it, with NaN where no valid tile contributed. The transposition from the channels-last
        strip happens here, in the merging thread, which leaves the writing thread only GDAL's work.
        """
        wanted = max(0, end_row - self.base)
        k = min(wanted, self.rows)
        start = self.base
        seen = self.weights[:k]
        if self.method in _WEIGHTED and not self.single_cover:
            with np.errstate(invalid="ignore", divide="ignore"):
                rows = self.values[:k] / seen[..., None]
        else:
            rows = self.values[:k]  # a view: the transposed copy below is what is handed out
        rows[seen == 0] = np.nan
        if wanted > k:  # tile rows with no valid pixel were skipped: their rows are all nodata
            gap = np.full((wanted - k, rows.shape[1], self.dim), np.nan, np.float32)
            rows = np.concatenate([rows, gap], axis=0)
        out = np.moveaxis(rows, -1, 0).copy()  # C order; a copy even when dim is 1 (then already contiguous)
        # shift the open rows up (numpy copies overlapping slices correctly)
        self.values[:self.rows - k] = self.values[k:]
        self.values[self.rows - k:] = 0
        self.weights[:self.rows - k] = self.weights[k:]
        self.weights[self.rows - k:] = 0
        self.base += wanted
        return start, out
