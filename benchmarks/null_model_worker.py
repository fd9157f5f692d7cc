"""The encoder worker with a backbone that costs nothing, to measure the pipeline's own ceiling.

    <worker python> -m benchmarks.null_model_worker encoder PARAMS.json

The model is loaded as usual (so the tile grid, feature size and normalisation are the real ones), then its
forward is replaced by zeros of the shape its tokens have: what remains is reading, normalising, merging and
writing.
"""

from __future__ import annotations

import sys

from engine import models, worker


def null_features(self, batch):
    import torch

    n = batch.shape[0]
    tokens = torch.zeros(n, self.grid[0] * self.grid[1], self.dim, device=batch.device)  # as a ViT returns them
    return tokens.transpose(1, 2).reshape(n, self.dim, *self.grid)


if __name__ == "__main__":
    models.LoadedBackbone.features = null_features
    sys.exit(worker.main())
