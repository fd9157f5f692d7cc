"""Merging overlapping tile features: every method on small constant tiles with hand-computed values, invalid
cells, NaN where nothing valid landed, rows handed out in order, and the centre/cosine weights."""

from __future__ import annotations

import numpy as np
import pytest

from engine.catalog import MERGE_METHODS
from engine.errors import ParameterError
from engine.merge import FeatureStrip, tile_weights
from engine.tiling import TileGrid

# Tiles of 4 px with a 2 x 2 feature grid (one cell = 2 px) every 2 px: neighbours share one cell column/row.
# A 6 x 2 px window: 2 tiles side by side, 3 x 1 output cells; the middle column is covered by both.
PAIR = TileGrid.create(6, 2, 4, 2, 2, 2)
# Feature vectors of the left (first added) and right tile: per feature, the minimum and maximum come from
# different tiles, so min/max must be taken feature by feature.
LEFT, RIGHT = (1.0, 5.0), (3.0, 2.0)


def constant_tile(values, grid_h=2, grid_w=2) -> np.ndarray:
    """Features (dim, grid_h, grid_w) equal to ``values[d]`` on every cell."""
    return np.asarray(values, np.float32)[:, None, None] * np.ones((1, grid_h, grid_w), np.float32)


def all_valid(grid_h=2, grid_w=2) -> np.ndarray:
    return np.ones((grid_h, grid_w), bool)


def merge_pair(method, left_valid=None, right_valid=None) -> np.ndarray:
    """Merge the LEFT and RIGHT tiles of PAIR (in that order) and return the one output row (dim, 3)."""
    strip = FeatureStrip(PAIR, 2, method)
    strip.add(constant_tile(LEFT), all_valid() if left_valid is None else left_valid, 0, 0)
    strip.add(constant_tile(RIGHT), all_valid() if right_valid is None else right_valid, 0, 1)
    start, rows = strip.pop_rows(PAIR.out_height)
    assert start == 0 and rows.shape == (2, 1, 3)
    return rows[:, 0]


def merge_wide_pair(method) -> np.ndarray:
    """Two tiles of 8 px with 4 x 4 cells of 2 px, 4 px (2 cells) apart, valued 1 (left) and 3 (right); returns
    the merged output (1, 4, 6): the two middle columns are covered by both."""
    grid = TileGrid.create(12, 8, 8, 4, 4, 4)
    strip = FeatureStrip(grid, 1, method)
    strip.add(constant_tile([1.0], 4, 4), all_valid(4, 4), 0, 0)
    strip.add(constant_tile([3.0], 4, 4), all_valid(4, 4), 0, 1)
    _, rows = strip.pop_rows(grid.out_height)
    assert rows.shape == (1, 4, 6)
    return rows


def test_the_pair_grid_is_what_the_hand_computations_assume():
    assert (PAIR.rows, PAIR.cols, PAIR.out_height, PAIR.out_width, PAIR.step_w) == (1, 2, 1, 3, 1)


@pytest.mark.parametrize("method, overlap", [
    ("average", (2.0, 3.5)),  # (1 + 3) / 2, (5 + 2) / 2
    ("first", LEFT),
    ("last", RIGHT),
    ("min", (1.0, 2.0)),
    ("max", (3.0, 5.0)),
])
def test_overlapping_cells_get_the_methods_value_and_single_cover_cells_their_tiles(method, overlap):
    row = merge_pair(method)
    np.testing.assert_allclose(row[:, 0], LEFT)  # only the left tile covers column 0
    np.testing.assert_allclose(row[:, 1], overlap)
    np.testing.assert_allclose(row[:, 2], RIGHT)


def test_average_is_a_true_mean_of_every_covering_tile():
    # 6 px tiles of 3 x 3 cells every 2 px (one cell) over a 10 px wide window: 3 tiles, 5 output columns;
    # column 2 is covered by all three tiles
    grid = TileGrid.create(10, 6, 6, 2, 3, 3)
    strip = FeatureStrip(grid, 1, "average")
    for col, value in enumerate((1.0, 2.0, 6.0)):
        strip.add(constant_tile([value], 3, 3), all_valid(3, 3), 0, col)
    _, rows = strip.pop_rows(grid.out_height)
    # (1+2)/2, (1+2+6)/3 (a running pairwise mean would give 3.75), (2+6)/2
    np.testing.assert_allclose(rows[0, 0], [1.0, 1.5, 3.0, 4.0, 6.0])


@pytest.mark.parametrize("method", MERGE_METHODS)
def test_invalid_cells_are_skipped(method):
    right_valid = np.array([[False, True], [False, True]])  # the right tile's overlap column is invalid
    row = merge_pair(method, right_valid=right_valid)
    np.testing.assert_allclose(row[:, 1], LEFT, rtol=1e-5)  # only the left tile counts there
    np.testing.assert_allclose(row[:, 2], RIGHT, rtol=1e-5)


@pytest.mark.parametrize("method", MERGE_METHODS)
def test_nan_where_no_valid_tile_contributed(method):
    left_valid = np.array([[False, True], [False, True]])
    row = merge_pair(method, left_valid=left_valid)
    assert np.isnan(row[:, 0]).all()
    assert np.isfinite(row[:, 1:]).all()


def test_centre_takes_each_cell_from_the_tile_whose_centre_holds_it():
    # Left tile: output columns 0-3 (centre region 1-2); right tile: columns 2-5 (centre region 3-4).
    rows = merge_wide_pair("centre")
    # on the centre rows (1-2) column 2 lies in the left centre only and column 3 in the right one: no averaging
    np.testing.assert_allclose(rows[0, 1:3], [[1, 1, 1, 3, 3, 3]] * 2, rtol=1e-5)
    # rows 0 and 3 are outside both centre regions (another tile row's centre would cover them): equal weights
    np.testing.assert_allclose(rows[0, [0, 3]], [[1, 1, 2, 2, 3, 3]] * 2, rtol=1e-5)


def test_cosine_weights_the_overlap_by_the_hann_window():
    rows = merge_wide_pair("cosine")
    inner, edge = np.sin(3 * np.pi / 8) ** 2, np.sin(np.pi / 8) ** 2  # 0.854, 0.146
    for r, wy in enumerate((edge, inner, inner, edge)):
        # column 2: inner column 2 of the left tile, edge column 0 of the right one; column 3 the reverse
        w_left, w_right = wy * inner + 1e-3, wy * edge + 1e-3
        expected_2 = (1 * w_left + 3 * w_right) / (w_left + w_right)
        expected_3 = (1 * w_right + 3 * w_left) / (w_left + w_right)
        np.testing.assert_allclose(rows[0, r, 2:4], [expected_2, expected_3], rtol=1e-5)
        np.testing.assert_allclose(rows[0, r, [0, 1, 4, 5]], [1, 1, 3, 3], rtol=1e-5)
    assert rows[0, 1, 2] < 1.4 and rows[0, 1, 3] > 2.6  # each tile dominates near its own centre


def test_cosine_weights_shape_symmetry_and_values():
    grid = TileGrid.create(64, 64, 16, 8, 8, 4)  # non-square token grid: 8 rows x 4 columns of cells
    weights = tile_weights("cosine", grid)
    assert weights.shape == (8, 4) and weights.dtype == np.float32
    np.testing.assert_allclose(weights, weights[::-1, :])
    np.testing.assert_allclose(weights, weights[:, ::-1])
    assert weights.min() > 0  # a border cell still counts where it is the only one
    square = tile_weights("cosine", TileGrid.create(16, 16, 8, 4, 4, 4))
    np.testing.assert_allclose(square, square.T)
    corner, middle = np.sin(np.pi / 8) ** 4 + 1e-3, np.sin(3 * np.pi / 8) ** 4 + 1e-3
    np.testing.assert_allclose([square[0, 0], square[1, 1]], [corner, middle], rtol=1e-6)
    assert square.argmax() in (5, 6, 9, 10)  # one of the four middle cells


def test_centre_weights_shape_and_symmetry():
    weights = tile_weights("centre", TileGrid.create(64, 64, 8, 4, 4, 4))
    assert weights.shape == (4, 4)
    np.testing.assert_array_equal(weights, weights[::-1, ::-1])
    np.testing.assert_array_equal(weights == 1, np.pad(np.ones((2, 2), bool), 1))  # the 2 x 2 centre region
    assert 0 < weights[0, 0] < 1e-3
    no_overlap = tile_weights("centre", TileGrid.create(64, 64, 8, 8, 4, 4))
    np.testing.assert_array_equal(no_overlap, np.ones((4, 4)))  # stride = size: the whole tile is its centre
    np.testing.assert_array_equal(tile_weights("average", TileGrid.create(64, 64, 8, 4, 4, 4)), np.ones((4, 4)))


def test_rows_are_handed_out_in_order_as_tile_rows_complete():
    # 6 x 6 px, 4 px tiles every 2 px, 2 x 2 cells: 2 x 2 tiles, 3 x 3 output cells, tile rows share row 1
    grid = TileGrid.create(6, 6, 4, 2, 2, 2)
    strip = FeatureStrip(grid, 1, "average")
    handed = []
    for tile_row, value in enumerate((1.0, 3.0)):
        if tile_row:
            handed.append(strip.pop_rows(grid.rows_final_after(tile_row - 1)))
        for tile_col in range(grid.cols):
            strip.add(constant_tile([value]), all_valid(), tile_row, tile_col)
    handed.append(strip.pop_rows(grid.out_height))
    assert [(start, rows.shape[1]) for start, rows in handed] == [(0, 1), (1, 2)]
    merged = np.concatenate([rows for _, rows in handed], axis=1)[0]
    np.testing.assert_allclose(merged, [[1, 1, 1], [2, 2, 2], [3, 3, 3]])
    assert strip.pop_rows(grid.out_height)[1].shape[1] == 0  # nothing is handed out twice


def test_skipped_tile_rows_come_out_as_nan_rows_in_place():
    # 7 output rows; tile rows 1-4 have no valid pixel and are never added (as the encoder skips them)
    grid = TileGrid.create(4, 14, 4, 2, 2, 2)
    strip = FeatureStrip(grid, 1, "first")
    strip.add(constant_tile([1.0]), all_valid(), 0, 0)
    first = strip.pop_rows(grid.rows_final_after(4))
    strip.add(constant_tile([5.0]), all_valid(), 5, 0)
    last = strip.pop_rows(grid.out_height)
    assert (first[0], first[1].shape, last[0], last[1].shape) == (0, (1, 5, 2), 5, (1, 2, 2))
    merged = np.concatenate([first[1], last[1]], axis=1)[0, :, 0]
    np.testing.assert_array_equal(merged, [1, 1, np.nan, np.nan, np.nan, 5, 5])


def test_resuming_starts_at_the_given_tile_row():
    grid = TileGrid.create(4, 14, 4, 2, 2, 2)
    strip = FeatureStrip(grid, 1, "last", first_tile_row=3)
    strip.add(constant_tile([2.0]), all_valid(), 3, 0)
    start, rows = strip.pop_rows(grid.rows_final_after(3))
    assert start == 3 and rows.shape == (1, 1, 2) and (rows == 2).all()


def test_an_unknown_method_names_merge_method():
    with pytest.raises(ParameterError) as info:
        FeatureStrip(PAIR, 2, "median")
    assert info.value.parameter == "MERGE_METHOD"
    assert str(info.value).startswith("MERGE_METHOD: unknown method 'median'") and "cosine" in str(info.value)
