"""The encoder worker with a backbone that costs nothing, to measure the pipeline's own ceiling.

    <worker python> -m benchmarks.null_model_worker encoder PARAMS.json

The model is loaded as usual (so the tile grid, feature size and normalisation are the real ones), then its
forward is replaced by fixed random tokens of the shape it returns: what remains is reading, normalising, merging and
writing.
"""

from __future__ import annotations

import sys

from engine import models, worker


#: Distinct batches of random tokens, cycled: made once (nothing is computed per batch), and as many as it takes
#: for no two tiles in one output block to repeat, so compression sees noise-like features, not copies.
POOL = 16
_TOKENS: dict = {}
_calls = [0]


def null_features(self, batch):
    """Tokens as a ViT returns them: (n, cells, dim) seen as (n, dim, grid_h, grid_w)."""
    import torch

    n, cells = batch.shape[0], self.grid[0] * self.grid[1]
    key = (n, batch.device)
    if key not in _TOKENS:
        generator = torch.Generator().manual_seed(0)
        _TOKENS[key] = [torch.randn(n, cells, self.dim, generator=generator).to(batch.device) for _ in range(POOL)]
    _calls[0] += 1
    tokens = _TOKENS[key][_calls[0] % POOL]
    return tokens.transpose(1, 2).reshape(n, self.dim, *self.grid)


if __name__ == "__main__":
    models.LoadedBackbone.features = null_features
    sys.exit(worker.main())
