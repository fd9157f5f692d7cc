import pytest

from engine.errors import ParameterError
from engine.tiling import TileGrid


def test_grid_covers_the_window_without_leaving_the_feature_grid():
    grid = TileGrid.create(700, 500, 224, 112, 14, 14)
    assert (grid.cell_w, grid.cell_h, grid.step_w, grid.step_h) == (16, 16, 7, 7)
    assert (grid.cols, grid.rows) == (6, 4)  # last tiles start at 560 / 336 and reach past the edge
    assert (grid.out_width, grid.out_height) == (44, 32)  # ceil(700/16), ceil(500/16)
    assert (grid.cols - 1) * grid.stride + grid.size >= 700


def test_raster_smaller_than_a_tile_gives_one_padded_tile():
    grid = TileGrid.create(100, 60, 224, 224, 14, 14)
    assert (grid.rows, grid.cols, grid.out_width, grid.out_height) == (1, 1, 7, 4)


def test_non_square_token_grid():
    grid = TileGrid.create(640, 480, 224, 64, 14, 7)
    assert (grid.cell_h, grid.cell_w, grid.step_h, grid.step_w) == (16, 32, 4, 2)
    assert (grid.out_height, grid.out_width) == (30, 20)


def test_stride_larger_than_size_is_refused():
    with pytest.raises(ParameterError, match="STRIDE: 300 must be between 1 and SIZE"):
        TileGrid.create(1000, 1000, 224, 300, 14, 14)


def test_stride_off_the_feature_grid_names_valid_values():
    with pytest.raises(ParameterError, match=r"STRIDE: 100 px does not fall on the feature grid.*multiple of 16 px "
                                             r"\(for example 96 or 112\)"):
        TileGrid.create(1000, 1000, 224, 100, 14, 14)


def test_resume_point_is_the_first_tile_row_reaching_unwritten_rows():
    grid = TileGrid.create(1000, 2000, 224, 112, 14, 14)
    assert grid.first_row_touching(0) == 0
    assert grid.first_row_touching(16) == 1  # rows 7..20 of tile row 1 reach row 16; tile row 0 ends at 13
    assert all(r * grid.step_h + grid.grid_h > 48 for r in range(grid.first_row_touching(48), grid.rows))
    assert (grid.first_row_touching(48) - 1) * grid.step_h + grid.grid_h <= 48
