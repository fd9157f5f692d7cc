"""Applying a fitted UMAP or HDBSCAN to every pixel in a few array operations over each pixel's neighbours in the
fitted sample, instead of the libraries' per-pixel paths (:data:`FAST_APPLIERS`; ``IAMAP_APPLY=library`` or
``library=True`` of :func:`engine.fitting.apply_model` keeps the libraries' own ``transform`` and
``approximate_predict``, the reference these are measured against in ``benchmarks/neighbour_apply_benchmark.py``).

- **HDBSCAN**: the same computation as ``hdbscan.approximate_predict``, vectorised: the ``2 * min_samples``
  nearest fitted pixels (only ``min_samples + 1`` for the pixels those settle, 99 % of them on the bundled scene),
  exactly, by the fastest search for the bands (:func:`engine.nearest_neighbours.nearest_neighbours`), the nearest
  one in mutual reachability and its lambda, then the walk up the condensed tree done for all pixels together,
  one level at a time. The labels are the library's (an adjusted Rand index of 1 on every data set measured); the
  library's own loop is a Python call per pixel.
- **UMAP**: umap-learn's ``transform`` finds each pixel's neighbours in the fitted sample with its own search
  index, weighs them by their fuzzy membership, places the pixel at the weighted mean of their embedding, then
  refines that place by 30 to 100 epochs of stochastic gradient descent (single-threaded when a seed is set).
  This applier keeps the same neighbours, weights and weighted mean and leaves out the descent, by far the
  largest part of the time. The embedding differs from umap's by the descent's small moves; the neighbourhoods
  it keeps (neighbourhood preservation, trustworthiness) are measured by the benchmark and stated in the FAQ.

Both use only what a fitted model holds (its sample, the sample's embedding or condensed tree), so models saved
before these appliers existed use them too. An applier returns None when the model is outside what it
reproduces (a precomputed metric, densMAP, a UMAP without a search index...): the library's path then runs.
"""

from __future__ import annotations

import copy
import os
import weakref

import numpy as np

from .nearest_neighbours import nearest_neighbours, parallel_tree_query, sample_index

#: ``IAMAP_APPLY`` value that makes :func:`engine.fitting.apply_model` use the libraries' own per-pixel paths.
LIBRARY = "library"
#: The metric whose neighbours :func:`engine.nearest_neighbours.nearest_neighbours` finds (the libraries' default).
EUCLIDEAN = "euclidean"


def library_apply_asked() -> bool:
    """Whether ``IAMAP_APPLY=library`` asks for the libraries' own paths (the reference)."""
    return os.environ.get("IAMAP_APPLY", "").strip().lower() == LIBRARY


def _neighbour_search(clusterer, data):
    """``search(pixels, k)`` -> (distances, indices) of the k nearest fitted points, exact: euclidean,
    :func:`engine.nearest_neighbours.nearest_neighbours`; another metric, the clusterer's own tree (which knows it)
    queried by every core at once."""
    if clusterer.metric == EUCLIDEAN:
        index = sample_index(clusterer, data.raw_data)
        return lambda pixels, k: nearest_neighbours(index, pixels, k)
    return lambda pixels, k: parallel_tree_query(data.tree, pixels, k)


def _condensed_tree_tables(clusterer) -> tuple:
    """Arrays for the walk up the condensed tree, made once per clusterer: each fitted point's cluster and the
    lambda at which it leaves it; each cluster's parent and the lambda at which it splits off (-inf: none); each
    cluster's label (-1: noise); the root."""
    tables = getattr(clusterer, "_iamap_walk_tables", None)
    if tables is not None:
        return tables
    data = clusterer.prediction_data_
    raw = clusterer.condensed_tree_._raw_tree
    points = len(data.core_distances)
    size = int(max(raw["parent"].max(), raw["child"].max())) + 1
    point_parent, point_lambda = np.zeros(points, np.int64), np.zeros(points, np.float64)
    leaves = raw[raw["child"] < points]
    # a point is the child of one row; the library takes the first such row
    first = np.unique(leaves["child"], return_index=True)[1]
    point_parent[leaves["child"][first]] = leaves["parent"][first]
    point_lambda[leaves["child"][first]] = leaves["lambda_val"][first]
    up_parent, up_lambda = np.full(size, -1, np.int64), np.full(size, -np.inf)
    clusters = data.cluster_tree
    up_parent[clusters["child"]] = clusters["parent"]  # a cluster is the child of one row (the library: the last)
    up_lambda[clusters["child"]] = clusters["lambda_val"]
    label = np.full(size, -1, np.int64)
    for cluster, value in data.cluster_map.items():
        label[int(cluster)] = value
    tables = (point_parent, point_lambda, up_parent, up_lambda, label, int(clusters["parent"].min()))
    clusterer._iamap_walk_tables = tables
    return tables


def hdbscan_labels(pipeline, values: np.ndarray) -> np.ndarray | None:
    """``hdbscan.approximate_predict(pipeline[-1], pipeline[:-1].transform(values))[0]``, vectorised."""
    clusterer = pipeline[-1]
    data = getattr(clusterer, "prediction_data_", None)
    if data is None or data.cluster_tree.shape[0] == 0:  # no prediction data, or every pixel is noise
        return None
    scaled = pipeline[:-1].transform(values)
    min_samples = clusterer.min_samples or clusterer.min_cluster_size
    search = _neighbour_search(clusterer, data)
    # The library takes the 2 * min_samples nearest, the nearest in mutual reachability among them (the first on a
    # tie). The first min_samples + 1 settle it wherever one of them has a core distance at most the pixel's (its
    # (min_samples + 1)-th distance): their reachability is then the pixel's core distance, and the later ones' is
    # at least their distance, at least that. Only the other pixels need the rest of their neighbours.
    distances, indices = search(scaled, min_samples + 1)
    core = distances[:, min_samples:min_samples + 1]
    reachability = np.maximum(data.core_distances[indices], core)
    best = reachability.argmin(axis=1)
    rows = np.arange(len(best))
    nearest, distance = indices[rows, best], reachability[rows, best]
    unsettled = np.flatnonzero(distance > core[:, 0])
    if len(unsettled):
        far, far_indices = search(scaled[unsettled], 2 * min_samples)
        far_reachability = np.maximum(np.maximum(data.core_distances[far_indices], core[unsettled]), far)
        far_best = far_reachability.argmin(axis=1)
        far_rows = np.arange(len(unsettled))
        nearest[unsettled] = far_indices[far_rows, far_best]
        distance[unsettled] = far_reachability[far_rows, far_best]
    lambdas = np.full(len(nearest), np.finfo(np.double).max)
    np.divide(1.0, distance, out=lambdas, where=distance > 0)
    point_parent, point_lambda, up_parent, up_lambda, label, root = _condensed_tree_tables(clusterer)
    cluster = point_parent[nearest]
    climbing = point_lambda[nearest] > lambdas  # the pixel joins above its neighbour's cluster: walk up
    while climbing.any():
        climbing &= (cluster > root) & (up_parent[cluster] >= 0) & (up_lambda[cluster] >= lambdas)
        cluster = np.where(climbing, up_parent[cluster], cluster)
    return label[cluster].astype(np.int32)


_PARALLEL_INDEXES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def parallel_search_index(model, index):
    """UMAP's search index answering a batch of pixels on every core: a copy of ``index`` (pynndescent's
    ``NNDescent``, whose batches run on one core unless made with ``parallel_batch_queries``) sharing its arrays,
    with its search function made again in parallel (numba's cache keeps it; the first time compiles it, about 9
    s). The same neighbours as the index's own (99.97 % on 384 bands; the rest are the search's ties and its
    random starts); 2.3 times as fast on 2 cores. Made once per fitted UMAP; ``index`` itself is left as it is
    (a saved model keeps it so). Any failure (another pynndescent) gives ``index``."""
    held = _PARALLEL_INDEXES.get(model)
    if held is not None:
        return held
    parallel = index
    if not getattr(index, "parallel_batch_queries", True) and hasattr(index, "_init_search_function"):
        try:
            parallel = copy.copy(index)
            parallel.parallel_batch_queries = True
            for attribute in ("_search_function", "_fast_plan", "_query_workspace"):
                parallel.__dict__.pop(attribute, None)
            parallel._init_search_function()
        except Exception:  # pynndescent's internals: any failure means its own search
            parallel = index
    _PARALLEL_INDEXES[model] = parallel
    return parallel


def umap_embedding(pipeline, values: np.ndarray) -> np.ndarray | None:
    """umap-learn's ``transform`` without its gradient descent: each pixel at the membership-weighted mean of the
    embedding of its neighbours in the fitted sample (the place umap's descent starts from)."""
    from umap.umap_ import smooth_knn_dist  # deferred: numba compiles on import

    model = pipeline[-1]
    index = getattr(model, "_knn_search_index", None)
    if (index is None or getattr(model, "_small_data", False) or getattr(model, "_sparse_data", False)
            or model.densmap or model.metric == "precomputed" or model.transform_mode != "embedding"):
        return None
    scaled = np.ascontiguousarray(pipeline[:-1].transform(values), np.float32)
    # umap's own index: the exact brute force of engine.nearest_neighbours was 2 to 3 times slower (11-384 bands;
    # measured before its cell search, which is not compared here)
    epsilon = 0.24 if index._angular_trees else 0.12  # what umap's transform asks of its index
    indices, distances = parallel_search_index(model, index).query(scaled, model.n_neighbors, epsilon=epsilon)
    distances = distances.astype(np.float32, order="C")
    indices[distances >= model._disconnection_distance] = -1
    sigmas, rhos = smooth_knn_dist(distances, float(model._n_neighbors),
                                   local_connectivity=float(max(0.0, model.local_connectivity - 1.0)))
    # umap's compute_membership_strengths (bipartite), on the dense (pixels, neighbours) arrays
    excess = distances - rhos[:, None].astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        weights = np.where((excess <= 0) | (sigmas[:, None] == 0), 1.0,
                           np.exp(-excess / sigmas[:, None].astype(np.float32))).astype(np.float32)
    weights[indices < 0] = 0
    totals = weights.sum(axis=1, keepdims=True)
    embedding = np.einsum("nk,nkc->nc", weights, model.embedding_[np.maximum(indices, 0)].astype(np.float32))
    with np.errstate(divide="ignore", invalid="ignore"):
        return embedding / totals  # no neighbour with a weight: NaN, as umap's transform gives


#: The applier of each estimator class (by name): ``applier(pipeline, values)`` -> output, or None for the library.
FAST_APPLIERS = {"HDBSCAN": hdbscan_labels, "UMAP": umap_embedding}
