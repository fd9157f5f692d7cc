"""Cosine similarity of pixel vectors to references: mean prototype, nearest reference, in chunks."""

from __future__ import annotations

import numpy as np

from engine import cosine


def test_max_over_many_references_is_computed_in_chunks_with_the_same_result(monkeypatch):
    import torch

    rng = np.random.default_rng(0)
    pixels, references = torch.from_numpy(rng.normal(size=(50, 6))), torch.from_numpy(rng.normal(size=(9, 6)))
    whole = cosine.cosine_similarity(pixels, references, "max")
    monkeypatch.setattr(cosine, "MAX_SIMILARITIES", 20)  # 2 pixels x 9 references at a time
    chunked = cosine.cosine_similarity(pixels, references, "max")
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    np.testing.assert_allclose(chunked.numpy(), (unit(pixels.numpy()) @ unit(references.numpy()).T).max(1))
    np.testing.assert_allclose(chunked.numpy(), whole.numpy(), rtol=1e-12)
