"""Exact euclidean k nearest neighbours in a fitted sample of few bands, through cells of the sample.

With few bands (11 to 32: reflectances, PCA-reduced features), a matmul over the whole sample costs far more than
the distances that matter: a pixel's k nearest fitted points lie in a few cells around it. The sample is cut into
the Voronoi cells of k-means centres (:class:`Cells`, made once per fitted model); each pixel (compiled by numba,
pixels in parallel) then

1. measures its distance to every centre and, from it, a lower bound on its distance to each cell's points
   (:meth:`Cells.lower_bounds`: the triangle inequality over the cell's radius, and the distance to the half-space
   beyond the bisector between its own centre and the cell's);
2. visits the cells by increasing bound, its own first, keeping its k nearest points so far, and stops at the first
   cell whose bound is beyond its k-th distance: no later cell can hold a nearer point. In a cell, it reads only
   the points whose distance to the centre is within its k-th distance of its own (the points are kept by
   distance to their centre: a binary search finds the first, the first beyond ends the cell).

The result is the exact search's (scikit-learn's KDTree ``query``): distances are float64 from the differences,
the same neighbours except for points at exactly the same distance. Pixels are searched in the order of their
nearest centre, so that consecutive pixels read the same cells from the cache.
"""

from __future__ import annotations

import numba
import numpy as np

#: Cells per square root of the fitted points: a cell's points cost each pixel that visits it, each cell costs every
#: pixel its bound (0.15 to 1.4 measured, on the bundled scene's 11 bands and on 16 generated ones, from 20 000 and
#: 100 000 fitted points: 0.35 was within 10 % of the fastest in each case).
CELLS_PER_ROOT = 0.35
#: Lloyd iterations of the cells' k-means: the cells need not be good clusters (any partition is exact), only
#: compact enough to be skipped.
CELL_ITERATIONS = 10
#: Pixels of each parallel share (each keeps its buffers for its pixels).
SHARE = 256
#: numba's fast-math flags without "no NaN / no infinity" (the bounds use infinity).
FAST_MATH = {"reassoc", "contract", "nsz", "arcp"}


class Cells:
    """The fitted points (centred, float64) in the Voronoi cells of :func:`cell_count` centres placed by k-means:
    each point in the cell of its nearest centre (from float64 differences), kept together (``order``,
    ``starts``) by increasing distance to that centre (``rings``), with each cell's radius (its farthest point's
    distance) and the distances between centres."""

    def __init__(self, exact: np.ndarray):
        from sklearn.cluster import KMeans  # deferred: scikit-learn takes a second to import

        count = cell_count(len(exact))
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

    def nearest_centres(self, pixels: np.ndarray) -> np.ndarray:
        """Each pixel's nearest centre, from float64 differences."""
        return np.concatenate([_centre_distances(self.centres, pixels[start:start + 4096]).argmin(axis=1)
                               for start in range(0, len(pixels), 4096)] or [np.zeros(0, np.int64)])

    def nearest_centres_roughly(self, pixels: np.ndarray) -> np.ndarray:
        """Each pixel's nearest centre by a float32 matmul (rounding may pick a nearly as near one: this only orders
        the pixels for the cache)."""
        centres = self.centres.astype(np.float32)
        return ((centres ** 2).sum(axis=1) - 2 * pixels.astype(np.float32) @ centres.T).argmin(axis=1)


def cell_count(points: int) -> int:
    """Cells of a sample of ``points``: :data:`CELLS_PER_ROOT` times its square root."""
    return max(1, round(CELLS_PER_ROOT * points ** 0.5))


def _centre_distances(centres: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    return np.sqrt(((pixels[:, None, :] - centres[None]) ** 2).sum(axis=2))


def cell_search(cells: Cells, pixels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(squared distances float64, indices int64 into the sample), both (pixels, k), nearest first, of the ``k``
    nearest fitted points of each row of ``pixels`` (centred like the sample)."""
    k = min(k, len(cells.points))
    pixels = np.asarray(pixels, np.float64)
    order = np.argsort(cells.nearest_centres_roughly(pixels), kind="stable")
    squared, rows = np.empty((len(pixels), k)), np.empty((len(pixels), k), np.int64)
    if len(pixels):
        _search_pixels(cells.points, cells.rings, cells.starts, cells.centres, cells.radius, cells.spacing,
                       np.ascontiguousarray(pixels[order]), k, squared, rows)
    back = np.empty_like(order)
    back[order] = np.arange(len(order))
    return squared[back], cells.order[rows[back]]


@numba.njit(parallel=True, fastmath=FAST_MATH, cache=True)  # compiled on first use; numba's cache keeps it
def _search_pixels(points, rings, starts, centres, radius, spacing, pixels, k, out_squared, out_rows):
    """The search of every pixel (the module's docstring says how), in ``out_squared`` and ``out_rows`` (rows of
    ``points``)."""
    count, bands = pixels.shape
    cells = centres.shape[0]
    for share in numba.prange((count + SHARE - 1) // SHARE):
        to_centre, bound = np.empty(cells), np.empty(cells)
        best, best_rows = np.empty(k), np.empty(k, np.int64)
        for p in range(share * SHARE, min(count, (share + 1) * SHARE)):
            x = pixels[p]
            own = 0
            for c in range(cells):
                total = 0.0
                for b in range(bands):
                    d = x[b] - centres[c, b]
                    total += d * d
                to_centre[c] = np.sqrt(total)
                if to_centre[c] < to_centre[own]:
                    own = c
            own_squared = to_centre[own] * to_centre[own]
            for c in range(cells):
                low = to_centre[c] - radius[c]
                if spacing[own, c] > 0:
                    beyond = (to_centre[c] * to_centre[c] - own_squared) / (2.0 * spacing[own, c])
                    if beyond > low:
                        low = beyond
                bound[c] = low
            bound[own] = -1.0
            for t in range(k):
                best[t] = np.inf
                best_rows[t] = -1
            kth = np.inf
            visit = np.argsort(bound)
            for v in range(cells):
                c = visit[v]
                # the bounds are float64 from differences: a relative slack of 1e-9 covers their rounding
                if bound[c] > 0 and bound[c] * bound[c] > kth * (1 + 1e-9):
                    break
                # a point at ``ring`` from the centre is at least |ring - to_centre| from the pixel: only the points
                # of the rings within the k-th distance of ``to_centre`` can be nearer
                first = starts[c]
                if kth < np.inf:
                    reach = np.sqrt(kth) * (1 + 1e-9) + 1e-12
                    first += np.searchsorted(rings[starts[c]:starts[c + 1]], to_centre[c] - reach)
                for j in range(first, starts[c + 1]):
                    outside = rings[j] - to_centre[c]
                    if outside > 0 and outside * outside > kth * (1 + 1e-9):
                        break
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
            out_squared[p] = best
            out_rows[p] = best_rows
