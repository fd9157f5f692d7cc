"""The cell search against scikit-learn's KDTree: the same neighbours and distances on clustered samples of few
bands, for pixels inside, between and far outside the clusters, and on the fitted points themselves."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from engine.cell_search import Cells, cell_count, cell_search


def clustered(count: int, bands: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, (6, bands))
    return centres[rng.integers(0, 6, count)] + rng.normal(0, 1, (count, bands)) * rng.uniform(0.3, 2, bands)


@pytest.mark.parametrize("bands, count, k", [(2, 5000, 20), (7, 6000, 11), (11, 8000, 1), (20, 5000, 20)])
def test_neighbours_are_the_kdtrees(bands, count, k):
    from sklearn.neighbors import KDTree

    sample = clustered(count, bands, bands)
    rng = np.random.default_rng(99)
    pixels = np.concatenate([clustered(3000, bands, bands + 1),  # other draws of the same clusters
                             rng.uniform(-12, 12, (300, bands)),  # between them
                             rng.normal(0, 60, (50, bands)),  # far outside: every cell is near-equally far
                             sample[:200]])  # the fitted points themselves: distance 0
    cells = Cells(sample)
    assert len(cells.centres) == cell_count(count) > 1
    squared, indices = cell_search(cells, pixels, k)
    expected_distances, expected = KDTree(sample).query(pixels, k=k)
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_allclose(np.sqrt(squared), expected_distances, rtol=0, atol=1e-9)
    assert (indices[-200:, 0] == np.arange(200)).all() and (squared[-200:, 0] == 0).all()


def test_every_point_lies_in_the_cell_of_its_nearest_centre():
    sample = clustered(5000, 4, 0)
    cells = Cells(sample)
    points = sample[cells.order]
    cell_of = np.repeat(np.arange(len(cells.centres)), np.diff(cells.starts))
    nearest = np.linalg.norm(points[:, None] - cells.centres[None], axis=2).argmin(axis=1)
    np.testing.assert_array_equal(cell_of, nearest)
    np.testing.assert_array_equal(cells.points, points)
    farthest = np.linalg.norm(points - cells.centres[cell_of], axis=1)
    for cell in range(len(cells.centres)):
        inside = farthest[cell_of == cell]
        assert cells.radius[cell] == (inside.max() if len(inside) else 0)


def test_no_pixels_give_empty_arrays():
    cells = Cells(clustered(5000, 3, 1))
    squared, indices = cell_search(cells, np.zeros((0, 3)), 5)
    assert squared.shape == indices.shape == (0, 5)


def test_a_sample_of_few_distinct_points_gives_the_kdtrees_distances():
    # integer-valued pixels repeat: fewer distinct points than cells leaves k-means with coinciding centres
    from sklearn.neighbors import KDTree

    rng = np.random.default_rng(3)
    sample = rng.integers(0, 3, (900, 2)).astype(np.float64)  # 9 distinct points, 30 cells
    pixels = rng.uniform(-1, 3, (500, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # k-means' warning about it is not passed on to the log
        cells = Cells(sample)
    squared, indices = cell_search(cells, pixels, 15)
    expected_distances, _ = KDTree(sample).query(pixels, k=15)
    np.testing.assert_allclose(np.sqrt(squared), expected_distances, rtol=0, atol=1e-9)
    np.testing.assert_allclose(((sample[indices] - pixels[:, None]) ** 2).sum(axis=2), squared, rtol=0, atol=1e-9)
