"""The flow shared by the unsupervised estimator tools (reduction, cluster; ml trains on labelled pixels in
:mod:`engine.ml`): check the parameters, open the input, then load ``LOAD_MODEL`` or sample the raster and fit
(saving to ``SAVE_MODEL``). The tool then writes its
raster from :class:`EstimatorRun` with :func:`engine.fitting.apply_model`."""

from __future__ import annotations

import contextlib
import functools
import time
from dataclasses import dataclass
from pathlib import Path

from . import legacy_models, legacy_runs
from .errors import ParameterError
from .estimator_registry import EstimatorSpec, estimator_class, estimator_spec, library_versions, parse_sk_params
from .fitting import fit_figures, fit_model, fit_sample_limit
from .model_files import check_save_path, describe, load_model, save_model
from .parameters import parameter_class
from .raster_writing import check_output
from .rasters import check_bands, extent_window, open_raster
from .sampling import sample_pixels


def check_estimator_parameters(p) -> None:
    """The checks every estimator tool (reduction, cluster, ml) makes of its parameters ``p`` before any work:
    SK_PARAM parsed into a dict, SAVE_MODEL writable, and (unless LOAD_MODEL) a METHOD the tool knows."""
    p.SK_PARAM = parse_sk_params(p.SK_PARAM)
    if p.SAVE_MODEL:
        check_save_path(p.SAVE_MODEL)
    if not p.LOAD_MODEL:
        estimator_class(p.TOOL, p.METHOD)  # an unknown METHOD names itself before any work


def estimator_params(params: dict, tool: str | EstimatorSpec):
    """The parameters of an unsupervised estimator tool: the contract's dataclass of that tool
    (:func:`engine.parameters.parameter_class`), checked by :func:`check_estimator_parameters`."""
    return _checked_parameter_class(estimator_spec(tool).name).from_dict(params)


@functools.cache
def _checked_parameter_class(tool: str) -> type:
    class Checked(parameter_class(tool)):
        def check(self) -> None:
            check_estimator_parameters(self)

        @property
        def size(self) -> int:
            """The value of the tool's size parameter (N_COMPONENTS, N_CLUSTERS)."""
            return getattr(self, estimator_spec(self.TOOL).size_parameter)

    Checked.__name__ = Checked.__qualname__ = f"{tool.title()}Params"
    return Checked


@dataclass
class EstimatorRun:
    """What a reduction or cluster run works with once its model is ready."""

    params: object  #: the tool's parameters (:func:`estimator_params`)
    output: Path
    src: object  #: the open input raster
    bands: list[int]
    window: object  #: rasterio Window of EXTENT
    model: dict
    reporter: object  #: progress of the block-wise pass (after sampling and fitting)

    @property
    def metadata(self) -> dict:
        return self.model["metadata"]


@contextlib.contextmanager
def estimator_run(tool: str | EstimatorSpec, params: dict, reporter):
    """Check the parameters, open the input and fit or load the model; the input stays open inside."""
    spec = estimator_spec(tool)
    p = estimator_params(params, spec)
    output = check_output(p.OUTPUT)
    with open_raster(p.INPUT) as src:
        bands = check_bands(src, p.BANDS)
        window = extent_window(src, p.EXTENT)
        model, stage = prepare_model(spec, p, src, bands, window, reporter)
        yield EstimatorRun(p, output, src, bands, window, model, stage)


def prepare_model(tool: str | EstimatorSpec, p, src, bands: list[int], window, reporter):
    """Load ``LOAD_MODEL``, or sample the raster and fit (saving to ``SAVE_MODEL``).

    Returns (model, reporter for the block-wise pass): progress 0-30 % sampling, 30-45 % fitting.
    """
    spec = estimator_spec(tool)
    if p.LOAD_MODEL:
        model = load_model(p.LOAD_MODEL, spec.name, len(bands), trust=p.TRUST_MODEL, reporter=reporter)
        if model.get(legacy_models.LEGACY_KEY):  # IAMAP 1.0.2's .pkl: its scaler is fitted on this raster
            return model, legacy_runs.complete(spec, model, p, src, bands, window, reporter)
        reporter.text(f"Applying the saved model: {describe(model)}. METHOD, SK_PARAM, SAMPLE_SIZE and "
                      f"{spec.size_parameter} are taken from the model.")
        return model, reporter
    size = fit_sample_limit(p.METHOD, p.SAMPLE_SIZE, len(bands), reporter)
    sample = sample_pixels(src, bands, window, size, p.RANDOM_SEED, reporter.stage(0, 30))
    if len(sample.values) < 2:
        raise ParameterError("EXTENT" if p.EXTENT else "INPUT",
                             f"{sample.valid_pixels} valid pixel(s) in the selected area: at least 2 are needed "
                             f"to fit. Check the nodata value of the bands, or choose a larger EXTENT.")
    reporter.text(f"Sample: {len(sample.values)} of {sample.valid_pixels} valid pixels, {len(bands)} band(s), "
                  f"seed {p.RANDOM_SEED}.")
    model, sample_output = fit_model(spec, p.METHOD, p.SK_PARAM, p.size, p.RANDOM_SEED, sample.values,
                                     reporter)
    reporter.progress(45)
    model["metadata"].update(
        tool=spec.name, method=p.METHOD, bands=bands, band_count=len(bands), input=p.INPUT,
        fitted_pixels=len(sample.values), versions=library_versions(p.METHOD),
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        parameters={"SK_PARAM": p.SK_PARAM, "SAMPLE_SIZE": p.SAMPLE_SIZE, "RANDOM_SEED": p.RANDOM_SEED,
                    spec.size_parameter: p.size},
        estimator_parameters={k: repr(v) for k, v in model["estimator"].get_params(deep=False).items()},
        fit_figures=fit_figures(spec, model, sample.values, sample_output))
    if p.SAVE_MODEL:
        saved = save_model(model, p.SAVE_MODEL, reporter)
        reporter.text(f"Model saved to {saved}; LOAD_MODEL applies it again without fitting.")
    return model, reporter.stage(45, 100)
