"""Runs with an IAMAP 1.0.2 model (:mod:`engine.legacy_models`): its StandardScaler fitted on the raster at hand,
as 1.0.2 did, and the model re-saved in IAMAP's own format when SAVE_MODEL asks for it.
"""

from __future__ import annotations

from .contract import MODEL_SUFFIX, label
from .errors import ParameterError
from .events import NULL_REPORTER
from .fitting import apply_model, fit_figures
from .legacy_models import LEGACY_KEY
from .model_files import save_model
from .prefetch import prefetched
from .rasters import iter_strips
from .sampling import sample_pixels


def complete(spec, model: dict, p, src, bands: list[int], window, reporter):
    """Fit the StandardScaler of a wrapped reduction or cluster model on this raster, as 1.0.2 did, and the figures
    on the seeded sample; re-save to SAVE_MODEL. Returns the reporter of the block-wise pass."""
    scaler, meta = model["pipeline"][0], model["metadata"]
    stage = reporter.stage(0, 15)
    for row, pixels, valid in prefetched(iter_strips(src, bands, window)):
        if valid.any():
            scaler.partial_fit(pixels[valid])
        stage.progress(100 * (row + len(valid) // window.width) / window.height)
    if not hasattr(scaler, "n_samples_seen_"):
        raise ParameterError("EXTENT" if p.EXTENT else "INPUT", "no valid pixel in the selected area: the scaling "
                                                                "IAMAP 1.0.2 fitted on the raster needs some.")
    sample = sample_pixels(src, bands, window, p.SAMPLE_SIZE, p.RANDOM_SEED, reporter.stage(15, 30))
    meta.update(bands=bands, input=p.INPUT, fitted_pixels=int(scaler.n_samples_seen_),
                fit_figures=fit_figures(spec, model, sample.values, apply_model(model, sample.values)),
                parameters={"SAMPLE_SIZE": p.SAMPLE_SIZE, "RANDOM_SEED": p.RANDOM_SEED})
    reporter.text(f"IAMAP 1.0.2's {meta['method']}: StandardScaler fitted on the {meta['fitted_pixels']} valid "
                  f"pixels of {len(bands)} band(s); figures from a sample of {len(sample.values)} pixels (seed "
                  f"{p.RANDOM_SEED}).")
    resave(model, p.SAVE_MODEL, bands, reporter)
    return reporter.stage(30, 100)


def resave(model: dict, path: str, bands: list[int], reporter=NULL_REPORTER) -> dict:
    """A wrapped 1.0.2 model saved to ``path`` (SAVE_MODEL) as a model file, or the way to do so logged."""
    if not model.get(LEGACY_KEY):
        return model
    meta = model["metadata"]
    if meta["bands"] is None:
        meta["bands"] = bands
    save = f"SAVE_MODEL (\u201c{label(meta['tool'], 'SAVE_MODEL')}\u201d)"
    scaler = "" if meta["tool"] == "ml" else " with the scaler fitted on this raster, no longer refitted on each one"
    if not path:
        reporter.text(f"{save} set to a {MODEL_SUFFIX} file re-saves this model in IAMAP's own format{scaler}, which "
                      f"loads without TRUST_MODEL and cannot run code.")
        return model
    saved = save_model(model, path, reporter)
    reporter.text(f"{save}: IAMAP 1.0.2's {meta['method']} re-saved to {saved}{scaler}; LOAD_MODEL loads that "
                  f"file without TRUST_MODEL, and it cannot run code.")
    return model
