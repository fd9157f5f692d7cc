"""The tile grid: where tiles are read in the input and where their features land in the output.

A tile of ``size`` x ``size`` input pixels is resized to the model input and comes out as a grid of
``grid_h`` x ``grid_w`` feature cells, so one output pixel (a *cell*) covers ``size / grid`` input pixels
along each axis. Tiles start every ``stride`` input pixels; their feature blocks must land on whole output
pixels, so ``stride`` must be a multiple of the cell size. Edge tiles run past the raster edge (the padding
is nodata) instead of being shifted back inside, which would put them off the grid.

So the output grid keeps the input's origin and a whole number of input pixels per cell, and its last row and
column hang over the input's bottom and right edges by less than one cell when the input is not a whole number
of cells (512 px of 10 m with 14 px cells: 37 cells of 140 m, 5180 m for 5120 m). Such edge cells are computed
from the part of them inside the input (:func:`engine.tile_pipeline.cell_validity`): the map has no notch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import ParameterError


def check_stride(size: int, stride: int) -> None:
    """STRIDE within 1..SIZE (checked with the parameters, before any model is loaded, and again by the grid)."""
    if stride < 1 or stride > size:
        raise ParameterError("STRIDE", f"{stride} must be between 1 and SIZE ({size}): a stride larger than the "
                                       "tile would leave gaps between tiles. Use STRIDE = SIZE for no overlap.")


@dataclass(frozen=True)
class TileGrid:
    """Tiles over a ``width`` x ``height`` window of the input.

    Attributes
    ----------
    width, height : int
        The processed window, in input pixels.
    size, stride : int
        Tile side and step, in input pixels.
    grid_h, grid_w : int
        Feature cells per tile (the model's token grid).
    """

    width: int
    height: int
    size: int
    stride: int
    grid_h: int
    grid_w: int

    @classmethod
    def create(cls, width: int, height: int, size: int, stride: int, grid_h: int, grid_w: int) -> TileGrid:
        """Validate ``size``/``stride`` against the model's grid and build the tile grid."""
        if size < max(grid_h, grid_w):
            raise ParameterError("SIZE", f"{size} px is smaller than the model's {grid_h}x{grid_w} feature grid; "
                                         f"use at least {max(grid_h, grid_w)}.")
        check_stride(size, stride)
        for axis, grid in (("rows", grid_h), ("columns", grid_w)):
            if (stride * grid) % size:
                cell = size / grid
                step = size // math.gcd(size, grid)  # smallest stride that is a whole number of cells
                lower = max(step, stride - stride % step)
                raise ParameterError(
                    "STRIDE", f"{stride} px does not fall on the feature grid: with SIZE={size} the model makes "
                              f"{grid} cells per tile ({axis}), one every {cell:g} px, so the stride must be a "
                              f"multiple of {step} px (for example {lower} or {min(size, lower + step)}).")
        return cls(width, height, size, stride, grid_h, grid_w)

    @property
    def cell_h(self) -> float:
        return self.size / self.grid_h

    @property
    def cell_w(self) -> float:
        return self.size / self.grid_w

    @property
    def step_h(self) -> int:
        """Output rows between two tile rows."""
        return self.stride * self.grid_h // self.size

    @property
    def step_w(self) -> int:
        return self.stride * self.grid_w // self.size

    @property
    def rows(self) -> int:
        """Tile rows needed to cover the window."""
        return 1 + max(0, math.ceil((self.height - self.size) / self.stride))

    @property
    def cols(self) -> int:
        return 1 + max(0, math.ceil((self.width - self.size) / self.stride))

    @property
    def count(self) -> int:
        return self.rows * self.cols

    @property
    def out_height(self) -> int:
        """Output rows: every cell that overlaps the window (the last may hang over its edge)."""
        return math.ceil(self.height / self.cell_h - 1e-9)

    @property
    def out_width(self) -> int:
        return math.ceil(self.width / self.cell_w - 1e-9)

    def inside(self, row: int, col: int) -> tuple[int, int]:
        """The rows and columns of tile (``row``, ``col``) inside the window, from its top-left corner; the rest of
        the tile is padding past the window's bottom or right edge."""
        return (max(0, min(self.size, self.height - row * self.stride)),
                max(0, min(self.size, self.width - col * self.stride)))

    def first_row_touching(self, out_row: int) -> int:
        """The first tile row whose features reach output row ``out_row`` or below (resume point)."""
        return max(0, min(self.rows - 1, math.floor((out_row - self.grid_h) / self.step_h) + 1))

    def rows_final_after(self, tile_row: int) -> int:
        """Output rows that no tile row after ``tile_row`` touches (all of them after the last)."""
        if tile_row >= self.rows - 1:
            return self.out_height
        return min(self.out_height, (tile_row + 1) * self.step_h)
