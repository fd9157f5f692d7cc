"""Exact euclidean k nearest neighbours of many pixels in a fitted sample, by the fastest search for its bands
(:class:`SampleIndex`): up to :data:`CELL_BANDS`, the sample's cells (:mod:`engine.cell_search`), beyond them a brute
force in torch, described here.

Each share of :data:`ROW_BUDGET` // sample-size pixels (at most :data:`MAX_ROWS`) is searched by one core, shares
in parallel (a core per thread, torch on one thread in each: OpenMP's own threads only wait for each other on a
loaded machine):

1. squared distances, up to each pixel's constant ``|x|^2``, by one float32 matmul: ``|y|^2 - 2 x.y``;
2. the ``k + MARGIN`` smallest of them without sorting every row: the smallest value of each run of
   :data:`BLOCK` fitted points, the ``k + MARGIN`` runs with the smallest ones (the ``k + MARGIN`` nearest points
   lie in them), and the ``k + MARGIN`` smallest values of those runs;
3. those candidates' distances again, exactly, in float64 from the differences, and sorted;
4. a check that float32 rounding cannot have left a nearer point out: the ``k``-th exact distance must be below
   the largest float32 candidate minus a bound on float32's error (:func:`_float32_error`). A pixel that fails it
   is searched again over the whole sample, in float64 from the differences.

The result is the exact search's (scikit-learn's KDTree/BallTree ``query``): the same neighbours, except for
points at exactly the same distance, and distances equal to rounding (1e-12). Memory: one share's float32
distances (``ROW_BUDGET`` floats, 16 MiB) per core, plus its candidates' differences in float64.
"""

from __future__ import annotations

import os
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor

import numpy as np

#: Fitted points per run whose smallest distance is taken (step 2).
BLOCK = 64
#: Candidates beyond ``k`` taken from the float32 distances, so that rounding rarely sends a pixel to step 4.
MARGIN = 8
#: Distances held per share (float32): the share's pixels times the fitted points (16 MiB).
ROW_BUDGET = 1 << 22
#: Most pixels per share (the float64 differences of step 3 are ``rows * (k + MARGIN) * bands``).
MAX_ROWS = 1024
#: Pixels of each share of a tree search run in parallel (each core takes shares in turn).
TREE_SHARE = 4096
#: At most this many bands the search goes through :class:`engine.cell_search.Cells`: there the whole sample's
#: distances cost more than finding the cells that matter (in more bands, every cell is near every pixel and a matmul
#: over the whole sample is faster). Measured (k = 11, pixels/s of the cells against the brute force), 20 000 fitted
#: points: 8 generated clusters, 16 bands 163 000 / 43 000, 32 bands 116 000 / 37 000, 64 bands 66 000 / 26 000; one
#: isotropic Gaussian, their worst case, 8 bands 113 000 / 50 000, 16 bands 26 000 / 49 000, 32 bands 21 000 /
#: 43 000; reflectances and PCA-reduced features are far nearer the first. On 500 to 100 000 fitted points of 1 to
#: 32 bands the cells are as fast as scikit-learn's KD-tree queried by every core, or up to 8 times faster (3
#: bands: 3.2 times from 20 000 points, 1.7 from 100 000), except on 1 band from 100 000 points (half its speed,
#: 470 000 px/s), so no tree is kept; on samples of 500 to 2000 points they are 4 to 14 times the brute force.
CELL_BANDS = 32
#: Unit roundoff of float32.
FLOAT32_UNIT = 2.0 ** -24

_INDEXES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class Points:
    """Fitted points (centred): float64, and float32 padded to whole runs of :data:`BLOCK` with their squared
    norms (padding: infinite, never near)."""

    def __init__(self, exact: np.ndarray):
        import torch  # deferred: torch takes seconds to import

        self.exact = exact
        count, bands = exact.shape
        padded = -(-count // BLOCK) * BLOCK
        single = np.zeros((padded, bands), np.float32)
        single[:count] = exact
        norms = np.full(padded, np.inf, np.float32)
        norms[:count] = (single[:count].astype(np.float64) ** 2).sum(axis=1)
        self.single, self.norms = torch.from_numpy(single), torch.from_numpy(norms)


class SampleIndex:
    """The fitted sample, centred (smaller values: smaller float32 errors), held for one of the two searches:
    :class:`engine.cell_search.Cells` (``cells``, at most :data:`CELL_BANDS` bands), else :class:`Points` for the
    brute force (``points``); the other is None."""

    def __init__(self, sample: np.ndarray):
        sample = np.asarray(sample, np.float64)
        self.mean = sample.mean(axis=0)
        self.exact = np.ascontiguousarray(sample - self.mean)
        self.largest_norm = float((self.exact ** 2).sum(axis=1).max())
        self.cells = self.points = None
        if self.exact.shape[1] <= CELL_BANDS:
            from .cell_search import Cells  # deferred: numba takes a second to import

            self.cells = Cells(self.exact)
        else:
            self.points = Points(self.exact)


def sample_index(owner, sample: np.ndarray) -> SampleIndex:
    """The :class:`SampleIndex` of ``sample``, made once per fitted estimator ``owner`` (kept out of the
    estimator itself, whose attributes a model file saves)."""
    index = _INDEXES.get(owner)
    if index is None:
        index = _INDEXES[owner] = SampleIndex(sample)
    return index


def _float32_error(pixel_norms: np.ndarray, index: SampleIndex) -> np.ndarray:
    """A bound on the error of step 1's float32 ``|x|^2 + |y|^2 - 2 x.y`` for each pixel: the inputs' rounding and
    a ``bands``-term dot product's (Higham's ``gamma_n`` bound), over ``|x|^2 + |y|^2`` >= ``2 |x.y|``."""
    bands = index.exact.shape[1]
    return 4.0 * (bands + 4) * FLOAT32_UNIT * (pixel_norms + index.largest_norm)


def _exact_rows(points: Points, pixels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Step 4: the k nearest of ``points`` in float64 from the differences (for the few pixels step 4 sends back:
    their ``|x|^2 + |y|^2 - 2 x.y`` cancels, even in float64, where it has ranked them wrongly in float32)."""
    import torch

    distances = torch.cdist(torch.from_numpy(pixels), torch.from_numpy(points.exact),
                            compute_mode="donot_use_mm_for_euclid_dist")
    nearest = distances.topk(min(k + MARGIN, len(points.exact)), dim=1, largest=False).indices.numpy()
    return _refined(points, pixels, nearest, k)


def _refined(points: Points, pixels: np.ndarray, candidates: np.ndarray, k: int) -> tuple:
    """Step 3: the candidates' squared distances from their differences in float64, the k smallest, sorted."""
    squared = ((points.exact[candidates] - pixels[:, None, :]) ** 2).sum(axis=2)
    order = np.argsort(squared, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(squared, order, axis=1), np.take_along_axis(candidates, order, axis=1)


_BUFFERS = threading.local()


def _buffer(rows: int, columns: int):
    """A float32 (rows, columns) array of this thread, made once: a new 16 MiB array per share costs page faults."""
    import torch

    held = getattr(_BUFFERS, "array", None)
    if held is None or held.numel() < rows * columns:
        held = _BUFFERS.array = torch.empty(rows * columns)
    return held[:rows * columns].view(rows, columns)


def _search_share(index: SampleIndex, pixels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Steps 1 to 4 for one share of pixels (already centred): (squared distances, indices), nearest first."""
    import torch

    points = index.points
    torch.set_num_threads(1)  # this thread's OpenMP: the shares are the parallelism
    count = len(points.exact)
    wanted = min(k + MARGIN, count)
    single = torch.from_numpy(pixels.astype(np.float32))
    partial = torch.addmm(points.norms, single, points.single.T, alpha=-2.0,
                          out=_buffer(len(pixels), len(points.norms)))
    runs = partial.view(len(pixels), -1, BLOCK)
    nearest_runs = runs.amin(dim=2).topk(min(wanted, runs.shape[1]), dim=1, largest=False).indices
    values = runs.gather(1, nearest_runs[:, :, None].expand(-1, -1, BLOCK)).flatten(1)
    smallest, place = values.topk(wanted, dim=1, largest=False)
    candidates = (nearest_runs.gather(1, place // BLOCK) * BLOCK + place % BLOCK).numpy()
    squared, indices = _refined(points, pixels, candidates, k)
    if wanted < count:
        pixel_norms = (pixels ** 2).sum(axis=1)
        largest_candidate = smallest[:, -1].double().numpy() + pixel_norms
        unsure = np.flatnonzero(squared[:, -1] >= largest_candidate - _float32_error(pixel_norms, index))
        if len(unsure):
            squared[unsure], indices[unsure] = _exact_rows(points, pixels[unsure], k)
    return squared, indices


def nearest_neighbours(index: SampleIndex, values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(distances float64, indices int64), both (pixels, k), nearest first, of the ``k`` nearest fitted points of
    each row of ``values`` (pixels, bands): scikit-learn's ``tree.query(values, k)``.

    With few bands (:class:`engine.cell_search.Cells`), the search of :func:`engine.cell_search.cell_search`; else
    the brute force above, in shares of the whole sample.
    """
    import torch

    pixels = np.asarray(values, np.float64) - index.mean
    if index.cells is not None:
        from .cell_search import cell_search  # deferred: numba takes a second to import

        squared, indices = cell_search(index.cells, pixels, k)
        return np.sqrt(squared), indices
    rows = int(max(16, min(MAX_ROWS, ROW_BUDGET // max(1, len(index.exact)))))
    shares = [pixels[start:start + rows] for start in range(0, len(pixels), rows)]
    threads = torch.get_num_threads()
    try:
        with ThreadPoolExecutor(max(1, min(len(shares), os.cpu_count() or 1))) as pool:
            parts = list(pool.map(lambda share: _search_share(index, share, k), shares))
    finally:
        torch.set_num_threads(threads)
    if not parts:
        return np.zeros((0, k)), np.zeros((0, k), np.int64)
    return np.sqrt(np.concatenate([p[0] for p in parts])), np.concatenate([p[1] for p in parts]).astype(np.int64)


def parallel_tree_query(tree, values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(distances, indices) of the ``k`` nearest fitted points of ``values`` (all of them if it holds fewer) from
    a scikit-learn tree, which releases the GIL while it searches: shares of :data:`TREE_SHARE` pixels, one
    thread per core."""
    values = np.asarray(values, np.float64)
    k = min(k, tree.data.shape[0])  # as the other searches
    shares = [values[start:start + TREE_SHARE] for start in range(0, len(values), TREE_SHARE)]
    if len(shares) <= 1:
        return tree.query(values, k=k)
    with ThreadPoolExecutor(min(len(shares), os.cpu_count() or 1)) as pool:
        parts = list(pool.map(lambda share: tree.query(share, k=k), shares))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
