"""Scaling pixel values before the model (see ``catalog.NORMALIZATIONS``).

``model``    the model's own mean/std (ImageNet statistics for most timm models), after scaling raw values
             to the model's units (x/255 for 8-bit data, x/10000 for the SSL4EO-S12 Sentinel-2 weights).
``dataset``  per-band mean and standard deviation of the processed extent, nodata excluded, measured on a
             decimated read (at most about a million pixels), so any sensor and bit depth works.
``none``     raw values.
``auto``     ``model`` when the data are what the model was trained on (8-bit with the model's band count,
             or the SSL4EO weights on 13 bands), otherwise ``dataset``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rasterio.enums import Resampling

from .catalog import NORMALIZATIONS
from .errors import ParameterError


@dataclass
class Normalization:
    """``(x * scale - mean) / std`` per band."""

    mode: str
    scale: np.ndarray
    mean: np.ndarray
    std: np.ndarray

    def describe(self) -> str:
        def fmt(values):
            return "[" + ", ".join(f"{v:.4g}" for v in values) + "]"

        return f"{self.mode}: scale {fmt(self.scale)}, mean {fmt(self.mean)}, std {fmt(self.std)}"


def band_statistics(src, bands: list[int], window, max_pixels: int = 1_000_000) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each band over ``window``, nodata and NaN excluded."""
    factor = max(1.0, (window.width * window.height / max_pixels) ** 0.5)
    shape = (len(bands), max(1, int(window.height / factor)), max(1, int(window.width / factor)))
    data = src.read(bands, window=window, out_shape=shape, resampling=Resampling.nearest).astype(np.float64)
    means, stds = [], []
    for i, band in enumerate(bands):
        values = data[i]
        nodata = src.nodatavals[band - 1]
        valid = np.isfinite(values) if nodata is None else np.isfinite(values) & (values != nodata)
        if not valid.any():
            raise ParameterError("BANDS", f"band {band} has no valid pixel in the processed extent (all nodata): "
                                          "leave it out of BANDS, choose an EXTENT where it has data, or set "
                                          "NORMALIZATION to model or none.")
        means.append(values[valid].mean())
        stds.append(values[valid].std())
    stds = np.where(np.asarray(stds) > 0, stds, 1.0)
    return np.asarray(means, np.float32), np.asarray(stds, np.float32)


def resolve_normalization(mode: str, src, bands: list[int], window, backbone) -> Normalization:
    """The scaling of NORMALIZATION ``mode`` for ``bands`` of ``src`` over ``window`` and ``backbone``."""
    if mode not in NORMALIZATIONS:
        raise ParameterError("NORMALIZATION", f"unknown value {mode!r}; choose one of {', '.join(NORMALIZATIONS)}.")
    n = len(bands)
    dtype = np.dtype(src.dtypes[bands[0] - 1])
    model_scale = backbone.input_scale or (1 / 255 if dtype == np.uint8 else None)
    if mode == "auto":
        fits_model = backbone.mean is not None and (
            (backbone.input_scale is not None and n == 13) or (dtype == np.uint8 and n == 3))
        mode = "model" if fits_model else "dataset"
    if mode == "model":
        if backbone.mean is None:
            raise ParameterError("NORMALIZATION", f"the model {backbone.name} publishes no mean/std; use 'dataset'.")
        if model_scale is None:
            raise ParameterError("NORMALIZATION", f"'model' needs 8-bit input (the model expects values in [0, 1]) "
                                                  f"but the bands are {dtype}; use 'dataset'.")
        return Normalization("model", np.full(n, model_scale, np.float32), np.asarray(backbone.mean, np.float32),
                             np.asarray(backbone.std, np.float32))
    if mode == "dataset":
        mean, std = band_statistics(src, bands, window)
        return Normalization("dataset", np.ones(n, np.float32), mean, std)
    return Normalization("none", np.ones(n, np.float32), np.zeros(n, np.float32), np.ones(n, np.float32))
