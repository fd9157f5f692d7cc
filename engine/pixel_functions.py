"""The functions a block-wise pass applies to the valid pixels of each strip, by name (:data:`PIXEL_FUNCTIONS`).

Given by a name and plain data (:class:`PixelFunction`), never as code, so that the workers of a Dask cluster
(:mod:`engine.scale_out_worker`) run the very same function as this machine
(:func:`engine.blockwise.apply_to_rasters`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cosine import cosine_similarity
from .devices import choose_device
from .fitting import apply_model


def _apply_fitted(data, pixels):
    model, dtype = data
    return (apply_model(model, pixels).astype(dtype),)


def _predict(pipeline, pixels):
    return (pipeline.predict(pixels),)


def _predict_class_and_probability(pipeline, pixels):
    probability = pipeline.predict_proba(pixels)
    best = probability.argmax(axis=1)
    return np.asarray(pipeline.classes_)[best], probability[np.arange(len(best)), best]


def _cosine_similarity(data, pixels):
    import torch  # deferred: seconds to import; the estimator tools' pixel functions never need it

    references, aggregation, device = data
    device = choose_device(device, 0)
    # a copy of the references: arrays sent to a worker may be read-only, which torch.from_numpy warns about
    return (cosine_similarity(torch.from_numpy(pixels).to(device), torch.tensor(references, device=device),
                              aggregation).float().cpu().numpy(),)


#: What a tool computes from the valid pixels (n, bands) of a strip, by name: one array per output raster.
PIXEL_FUNCTIONS = {
    "apply_fitted": _apply_fitted,  #: data (fitted model dict, output dtype): embedding or labels
    "predict": _predict,  #: data: a fitted pipeline
    "predict_class_and_probability": _predict_class_and_probability,  #: data: a fitted classifier pipeline
    "cosine_similarity": _cosine_similarity,  #: data (references (m, bands), aggregation, DEVICE)
}


@dataclass(frozen=True)
class PixelFunction:
    """A function of the pixels given by name (:data:`PIXEL_FUNCTIONS`) and data, so that the workers of a Dask
    cluster can run it too (:mod:`engine.scale_out` sends the name and the data, plain objects, never code).
    Called on pixels (n, bands) float32, returns one array per output raster."""

    name: str
    data: object

    def __call__(self, pixels: np.ndarray) -> tuple:
        return PIXEL_FUNCTIONS[self.name](self.data, pixels)
