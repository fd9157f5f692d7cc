"""The vectorised UMAP and HDBSCAN appliers against the libraries' own paths: HDBSCAN's labels equal to
approximate_predict's (noise included), UMAP's embedding keeping the clusters where umap's transform puts them,
IAMAP_APPLY=library giving the libraries' output, and the fall-back when a model is outside what they reproduce."""

from __future__ import annotations

import numpy as np
import pytest

from engine.events import NULL_REPORTER
from engine.fitting import APPLIERS, apply_model, fit_model
from engine.neighbour_apply import hdbscan_labels, umap_embedding


def blobs(count: int, seed: int, bands: int = 5, spread: float = 1.0):
    rng = np.random.default_rng(seed)
    centres = np.array([np.full(bands, -6.0), np.zeros(bands), np.full(bands, 6.0)])
    labels = rng.integers(0, 3, count)
    return (centres[labels] + rng.normal(0, spread, (count, bands))).astype(np.float32), labels


def test_hdbscan_labels_are_approximate_predicts_noise_included():
    fit, _ = blobs(1500, 0)
    model, _ = fit_model("cluster", "HDBSCAN", {}, 8, 0, fit, NULL_REPORTER)
    new, _ = blobs(3000, 1, spread=1.6)  # wider: border pixels too
    far = np.random.default_rng(2).uniform(-40, 40, (100, 5)).astype(np.float32)  # far from every cluster: noise
    new = np.concatenate([new, far])
    library = APPLIERS["approximate_predict"](model["pipeline"], new)
    fast = hdbscan_labels(model["pipeline"], new)
    assert fast.dtype == np.int32 and (library == -1).any()
    np.testing.assert_array_equal(fast, library)
    assert len(np.unique(fast[fast >= 0])) == 3


@pytest.mark.parametrize("bands, count, search", [(2, 400, "cells"), (6, 5000, "cells"), (40, 1500, "brute force")])
def test_hdbscan_labels_are_approximate_predicts_by_every_neighbour_search(bands, count, search, monkeypatch):
    import engine.neighbour_apply as neighbour_apply
    from engine.nearest_neighbours import sample_index

    fit, _ = blobs(count, 0, bands)
    model, _ = fit_model("cluster", "HDBSCAN", {}, 8, 0, fit, NULL_REPORTER)
    new, _ = blobs(3000, 1, bands, spread=1.8)
    rng = np.random.default_rng(2)
    # at the clusters' centres, pixels are denser than their neighbours: those are the unsettled ones
    centres = np.repeat(np.array([-6.0, 0.0, 6.0]), 30)[:, None] + rng.normal(0, 0.05, (90, bands))
    new = np.concatenate([new, centres, rng.uniform(-40, 40, (100, bands))]).astype(np.float32)
    clusterer = model["pipeline"][-1]
    searched = []
    chosen = neighbour_apply._neighbour_search

    def spied(clusterer, data):
        inner = chosen(clusterer, data)
        return lambda pixels, k: searched.append((len(pixels), k)) or inner(pixels, k)

    monkeypatch.setattr(neighbour_apply, "_neighbour_search", spied)
    fast = hdbscan_labels(model["pipeline"], new)
    np.testing.assert_array_equal(fast, APPLIERS["approximate_predict"](model["pipeline"], new))
    assert (fast == -1).any() and len(np.unique(fast[fast >= 0])) == 3
    # every pixel's min_samples + 1 nearest, then the 2 * min_samples nearest of the pixels those do not settle
    min_samples = clusterer.min_samples
    assert searched[0] == (len(new), min_samples + 1) and searched[1][1] == 2 * min_samples
    assert 0 < searched[1][0] < len(new) / 2
    index = sample_index(clusterer, clusterer.prediction_data_.raw_data)
    assert {"cells": index.cells, "brute force": index.points}[search] is not None


def test_hdbscan_with_no_cluster_leaves_it_to_the_library():
    fit = np.random.default_rng(0).uniform(size=(300, 3)).astype(np.float32)
    model, _ = fit_model("cluster", "HDBSCAN", {"min_cluster_size": 290}, 8, 0, fit, NULL_REPORTER)
    assert model["pipeline"][-1].prediction_data_.cluster_tree.shape[0] == 0
    assert hdbscan_labels(model["pipeline"], fit) is None
    assert (apply_model(model, fit) == -1).all()  # the library's answer: all noise


@pytest.fixture(scope="module")
def umap_model():
    fit, labels = blobs(800, 0)
    model, embedding = fit_model("reduction", "UMAP", {}, 2, 0, fit, NULL_REPORTER)
    return model, embedding, labels


def test_umap_embedding_puts_each_cluster_where_umaps_transform_does(umap_model):
    model, embedding, labels = umap_model
    new, truth = blobs(1000, 1)
    library = APPLIERS["transform"](model["pipeline"], new)
    fast = umap_embedding(model["pipeline"], new)
    assert fast.shape == library.shape == (1000, 2) and np.isfinite(fast).all()
    centres = np.array([embedding[labels == k].mean(axis=0) for k in range(3)])
    nearest = np.linalg.norm(fast[:, None] - centres[None], axis=2).argmin(axis=1)
    assert (nearest == truth).mean() > 0.99
    spread = np.linalg.norm(embedding - embedding.mean(axis=0), axis=1).mean()
    assert np.median(np.linalg.norm(fast - library, axis=1)) < 0.2 * spread


def test_umaps_index_is_searched_on_every_core_by_a_copy_with_the_same_neighbours(umap_model):
    from engine.neighbour_apply import parallel_search_index

    model, _, _ = umap_model
    estimator = model["pipeline"][-1]
    own = estimator._knn_search_index
    parallel = parallel_search_index(estimator, own)
    assert parallel is not own and parallel.parallel_batch_queries and not own.parallel_batch_queries
    assert parallel_search_index(estimator, own) is parallel  # made once per model
    new, _ = blobs(2000, 3)
    scaled = np.ascontiguousarray(model["pipeline"][:-1].transform(new), np.float32)
    mine, _ = parallel.query(scaled, estimator.n_neighbors, epsilon=0.12)
    theirs, _ = own.query(scaled, estimator.n_neighbors, epsilon=0.12)
    assert np.mean(np.sort(mine, axis=1) == np.sort(theirs, axis=1)) > 0.99


def test_iamap_apply_library_gives_the_librarys_own_output(umap_model, monkeypatch):
    model, _, _ = umap_model
    new, _ = blobs(300, 2)
    monkeypatch.setenv("IAMAP_APPLY", "library")
    np.testing.assert_array_equal(apply_model(model, new), APPLIERS["transform"](model["pipeline"], new))
    monkeypatch.delenv("IAMAP_APPLY")
    np.testing.assert_array_equal(apply_model(model, new), umap_embedding(model["pipeline"], new))
