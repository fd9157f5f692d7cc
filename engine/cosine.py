"""Cosine similarity of pixel vectors to reference vectors, in pure torch: the one implementation that the
similarity tool (block by block, on this machine or a cluster's workers) and the similarity explorer share.

``mean``  similarity to one prototype, the mean of the reference vectors.
``max``   the highest similarity over the reference vectors: similarity to the nearest reference.
"""

from __future__ import annotations

#: Similarities computed at once by ``max``: pixels x references, float32 (bounds memory with many references).
MAX_SIMILARITIES = 2**24


def cosine_similarity(pixels, references, aggregation: str, unit_pixels: bool = False):
    """Cosine similarity of ``pixels`` (n, c) to ``references`` (m, c), aggregated to (n,). Torch tensors.

    With ``unit_pixels`` the pixels are already unit vectors (the explorer normalises them once, at load) and the
    products are computed in their dtype (float16 there: half the memory traffic of a click).
    """
    import torch  # deferred: seconds to import, and only a computed similarity needs it

    if not unit_pixels:
        pixels = torch.nn.functional.normalize(pixels, dim=1, eps=1e-12)
    if aggregation == "mean":
        prototype = torch.nn.functional.normalize(references.float().mean(dim=0, keepdim=True), dim=1, eps=1e-12)
        return (pixels @ prototype.T.to(pixels.dtype))[:, 0]
    references = torch.nn.functional.normalize(references.float(), dim=1, eps=1e-12).to(pixels.dtype)
    chunk = max(1, MAX_SIMILARITIES // len(references))  # up to 100 000 references: never all pairs at once
    return torch.cat([(part @ references.T).amax(dim=1) for part in pixels.split(chunk)])


def cosine_similarity_numpy(pixels, references, aggregation: str):
    """:func:`cosine_similarity` of numpy float32 arrays, for the similarity explorer's first map, computed while
    torch is still being imported (over a second): the same formulas, the same ``max`` bound on memory."""
    import numpy as np

    def normalise(vectors):
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    pixels = normalise(pixels.astype(np.float32, copy=False))
    if aggregation == "mean":
        return pixels @ normalise(references.astype(np.float32).mean(axis=0, keepdims=True))[0]
    references = normalise(references.astype(np.float32))
    chunk = max(1, MAX_SIMILARITIES // len(references))
    return np.concatenate([(pixels[start:start + chunk] @ references.T).max(axis=1)
                           for start in range(0, len(pixels), chunk)])
