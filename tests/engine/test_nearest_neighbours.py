"""The brute-force exact search against scikit-learn's KDTree: the same neighbours and distances, including where
float32 rounding alone would rank them wrongly (the float64 search takes those pixels over)."""

from __future__ import annotations

import numpy as np
import pytest

import engine.nearest_neighbours as nn


@pytest.mark.parametrize("bands, count, k, search", [(3, 1000, 20, "cells"), (1, 3001, 11, "cells"),
                                                     (16, 5000, 20, "cells"), (4, 5000, 11, "cells"),
                                                     (200, 700, 15, "points"), (33, 3001, 20, "points"),
                                                     (2, 10, 20, "cells"), (40, 10, 20, "points")])
def test_neighbours_are_the_kdtrees(bands, count, k, search):
    from sklearn.neighbors import KDTree

    rng = np.random.default_rng(bands)
    sample = rng.normal(size=(count, bands)) * rng.uniform(0.5, 3, bands) + 5
    pixels = rng.normal(size=(2500, bands)) * 2 + 5
    index = nn.SampleIndex(sample)
    assert [name for name in ("cells", "points") if getattr(index, name) is not None] == [search]
    distances, indices = nn.nearest_neighbours(index, pixels, k)
    expected_distances, expected = KDTree(sample).query(pixels, k=min(k, count))
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_allclose(distances, expected_distances, rtol=0, atol=1e-9)


def test_pixels_float32_cannot_rank_are_searched_in_float64(monkeypatch):
    from sklearn.neighbors import KDTree

    rng = np.random.default_rng(0)
    # a tight cluster far from the sample's mean: float32's |y|^2 - 2 x.y error (~1e-2) swamps its 1e-3 spacing
    bands = nn.CELL_BANDS + 1  # the brute force's
    sample = np.concatenate([rng.normal(0, 1e-3, (500, bands)) + 1e4, rng.normal(0, 1e-3, (500, bands)) - 1e4])
    pixels = rng.normal(0, 1e-3, (300, bands)) + 1e4
    searched = []
    exact_rows = nn._exact_rows
    monkeypatch.setattr(nn, "_exact_rows", lambda points, rows, k: searched.append(len(rows)) or
                        exact_rows(points, rows, k))
    distances, indices = nn.nearest_neighbours(nn.SampleIndex(sample), pixels, 10)
    expected_distances, expected = KDTree(sample).query(pixels, k=10)
    assert sum(searched) > 0
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_allclose(distances, expected_distances, rtol=0, atol=1e-9)
