"""Exact euclidean k nearest neighbours in a fitted sample of few bands, through cells of the sample.

With few bands (up to 32: reflectances, PCA-reduced features), a matmul over the whole sample costs far more than
the distances that matter: a pixel's k nearest fitted points lie in a few cells around it. The sample is cut into
the Voronoi cells of k-means centres (:class:`Cells`, made once per fitted model); each pixel (compiled by numba,
pixels in parallel) then visits the cells from the one of its nearest centre outwards, in the order of their
centres' distance to that centre, keeping its k nearest points so far:

- it stops at the first cell whose centre is more than twice its k-th distance plus its distance to its own centre
  away from that centre: every point of that cell and of the later ones is beyond its k-th distance (a point of a
  cell is nearer its centre than any other centre's, so it lies beyond the bisector of the two centres, which is at
  least half their spacing minus the pixel's distance to its own centre away);
- it skips a cell whose lower bound is beyond its k-th distance: the triangle inequality over the cell's radius,
  and the distance to the half-space beyond the bisector between its own centre and the cell's;
- in a cell it reads only the points whose distance to the centre is within its k-th distance of its own (the
  points are kept by distance to their centre: a binary search finds the first and the last, the last searched
  again each time the k-th distance shrinks).

Only the cells it reaches cost a pixel their centre's distance, so the cells can be small (:data:`CELLS_PER_ROOT`).
The result is the exact search's (scikit-learn's KDTree ``query``): distances are float64 from the differences,
the same neighbours except for points at exactly the same distance. Pixels are searched in the order of their
nearest centre, so that consecutive pixels read the same cells from the cache.
"""

from __future__ import annotations

import warnings

import numba
import numpy as np

#: Cells per square root of the fitted points: a cell's points cost each pixel that reads it, a cell costs each
#: pixel that reaches it its centre's distance. Measured from 0.35 to 3 on the bundled scene's 11 bands (20 000 and
#: 100 000 fitted points): 1.0 was the fastest, 1.45 times the speed of 0.35; 2 was 1.4 times slower than 1.
CELLS_PER_ROOT = 1.0
#: Lloyd iterations of the cells' k-means: the cells need not be good clusters (any partition is exact), only
#: compact enough to be skipped (40 was 7 % faster to search than 10 on the scene, and 15 % slower to make).
CELL_ITERATIONS = 20
#: Pixels of each parallel share (each keeps its buffers for its pixels).
SHARE = 256
#: numba's fast-math flags without "no NaN / no infinity" (the bounds use infinity).
FAST_MATH = {"reassoc", "contract", "nsz", "arcp"}


class Cells:
    """The fitted points (centred, float64) in the Voronoi cells of :func:`cell_count` centres placed by k-means:
    each point in the cell of its nearest centre (from float64 differences), kept together (``order``,
    ``starts``) by increasing distance to that centre (``rings``), with each cell's radius (its farthest point's
    distance), the distances between centres (``spacing``) and, for each cell, every cell by increasing distance
    of its centre (``by_spacing``, the cell itself first)."""

    def __init__(self, exact: np.ndarray):
        from sklearn.cluster import KMeans  # deferred: scikit-learn takes a second to import
        from sklearn.exceptions import ConvergenceWarning

        count = cell_count(len(exact))
        with warnings.catch_warnings():
            # fewer distinct points than cells (integer pixels repeat): centres coincide, some cells stay empty,
            # which the search handles; the warning would only puzzle a user reading the log
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.centres = KMeans(n_clusters=count, n_init=1, max_iter=CELL_ITERATIONS,
                                  random_state=0).fit(exact).cluster_centers_.astype(np.float64)
        labels = self.nearest_centres(exact)
        rings = np.sqrt(((exact - self.centres[labels]) ** 2).sum(axis=1))
        self.order = np.lexsort((rings, labels))  # by cell, then by distance to the cell's centre
        self.points = np.ascontiguousarray(exact[self.order])
        self.rings = rings[self.order]
        self.starts = np.searchsorted(labels[self.order], np.arange(count + 1))
        self.radius = np.zeros(count)
        np.maximum.at(self.radius, labels, rings)
        self.spacing = np.sqrt(((self.centres[:, None, :] - self.centres[None]) ** 2).sum(axis=2))
        # the cell itself first, even where another centre coincides with it
        self.by_spacing = np.lexsort((np.arange(count)[None, :] != np.arange(count)[:, None], self.spacing))

    def nearest_centres(self, pixels: np.ndarray) -> np.ndarray:
        """Each pixel's nearest centre, from float64 differences (the first centre on a tie)."""
        nearest = np.empty(len(pixels), np.int64)
        _nearest_centres(self.centres, np.ascontiguousarray(pixels, np.float64), nearest)
        return nearest


def cell_count(points: int) -> int:
    """Cells of a sample of ``points``: :data:`CELLS_PER_ROOT` times its square root."""
    return max(1, round(CELLS_PER_ROOT * points ** 0.5))


@numba.njit(parallel=True, fastmath=FAST_MATH, cache=True)
def _nearest_centres(centres, pixels, out_nearest):
    for p in numba.prange(pixels.shape[0]):
        nearest, least = 0, np.inf
        for c in range(centres.shape[0]):
            total = 0.0
            for b in range(pixels.shape[1]):
                d = pixels[p, b] - centres[c, b]
                total += d * d
            if total < least:
                nearest, least = c, total
        out_nearest[p] = nearest


def cell_search(cells: Cells, pixels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(squared distances float64, indices int64 into the sample), both (pixels, k), nearest first, of the ``k``
    nearest fitted points of each row of ``pixels`` (centred like the sample)."""
    k = min(k, len(cells.points))
    pixels = np.ascontiguousarray(pixels, np.float64)
    owns = cells.nearest_centres(pixels)
    order = np.argsort(owns, kind="stable")
    squared, rows = np.empty((len(pixels), k)), np.empty((len(pixels), k), np.int64)
    if len(pixels):
        _search_pixels(cells.points, cells.rings, cells.starts, cells.centres, cells.radius, cells.spacing,
                       cells.by_spacing, cells.order, pixels, order, owns, k, squared, rows)
    return squared, rows


# The ring ends' binary searches, written out: numpy's searchsorted on a slice of ``rings`` made the search up to 17 %
# slower (alternated runs on the bundled scene and on 3 generated bands, 20 000 fitted points: 0.5 to 17 %).
@numba.njit(inline="always")
def _first_above(values, low, high, limit):
    """The first index in [low, high) of sorted ``values`` whose value is above ``limit`` (``high``: none)."""
    while low < high:
        middle = (low + high) >> 1
        if values[middle] > limit:
            high = middle
        else:
            low = middle + 1
    return low


@numba.njit(inline="always")
def _first_from(values, low, high, limit):
    """The first index in [low, high) of sorted ``values`` whose value is at least ``limit``."""
    while low < high:
        middle = (low + high) >> 1
        if values[middle] >= limit:
            high = middle
        else:
            low = middle + 1
    return low


@numba.njit(parallel=True, fastmath=FAST_MATH, cache=True)  # compiled on first use; numba's cache keeps it
def _search_pixels(points, rings, starts, centres, radius, spacing, by_spacing, sample_rows, pixels, order, owns, k,
                   out_squared, out_rows):
    """The search of every pixel, in ``order``, from the cell ``owns`` gives it (the module's docstring says how),
    in its row of ``out_squared`` and ``out_rows`` (rows of the sample: ``sample_rows`` of the rows of
    ``points``)."""
    count, bands = pixels.shape
    cells = centres.shape[0]
    for share in numba.prange((count + SHARE - 1) // SHARE):
        best, best_rows = np.empty(k), np.empty(k, np.int64)
        for q in range(share * SHARE, min(count, (share + 1) * SHARE)):
            p = order[q]
            x = pixels[p]
            own = owns[p]
            own_squared = 0.0
            for b in range(bands):
                d = x[b] - centres[own, b]
                own_squared += d * d
            own_distance = np.sqrt(own_squared)
            for t in range(k):
                best[t] = np.inf
                best_rows[t] = -1
            kth = np.inf
            # the bounds are float64 from differences: a relative slack of 1e-9 covers their rounding
            reach = np.inf
            for v in range(cells):
                c = by_spacing[own, v]
                if 0.5 * spacing[own, c] - own_distance > reach:
                    break  # this cell and every later one lie beyond the bisectors: none holds a nearer point
                to_centre = own_distance
                if c != own:
                    to_centre = 0.0
                    for b in range(bands):
                        d = x[b] - centres[c, b]
                        to_centre += d * d
                    low = (to_centre - own_squared) / (2.0 * spacing[own, c]) if spacing[own, c] > 0 else -1.0
                    to_centre = np.sqrt(to_centre)
                    if low > reach or to_centre - radius[c] > reach:
                        continue
                # a point at ``ring`` from the centre is at least |ring - to_centre| from the pixel: only the points
                # of the rings within the k-th distance of ``to_centre`` can be nearer
                first, end = starts[c], starts[c + 1]
                if kth < np.inf:
                    first = _first_from(rings, first, end, to_centre - reach)
                    end = _first_above(rings, first, end, to_centre + reach)
                j = first
                while j < end:
                    total = 0.0
                    for b in range(bands):
                        d = points[j, b] - x[b]
                        total += d * d
                    if total < kth:
                        place = k - 1
                        while place > 0 and best[place - 1] > total:
                            best[place] = best[place - 1]
                            best_rows[place] = best_rows[place - 1]
                            place -= 1
                        best[place] = total
                        best_rows[place] = j
                        kth = best[k - 1]
                        if kth < np.inf:
                            reach = np.sqrt(kth) * (1 + 1e-9) + 1e-12
                            end = _first_above(rings, j + 1, end, to_centre + reach)
                    j += 1
            for t in range(k):
                out_squared[p, t] = best[t]
                out_rows[p, t] = sample_rows[best_rows[t]]  # k is at most the points: every slot is filled
