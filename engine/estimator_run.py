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

from . import legacy_models
from .errors import ParameterError
from .parameters import parameter_class
from .estimator_registry import ToolSpec, estimator_class, library_versions, parse_sk_params, tool_spec
from .fitting import fit_figures, fit_model, fit_sample_limit
from .model_files import check_save_path, describe, load_model, save_model

class EstimatorParams:
    """The parameters of an estimator tool: the contract's dataclass of that tool (``engine.contract``), with the
    checks the estimator tools share, all made before the sample is read."""

    @staticmethod
    def from_dict(params: dict, tool: str | ToolSpec):
        return _checked_parameter_class(tool_spec(tool).name).from_dict(params)


@functools.lru_cache(maxsize=None)
def _checked_parameter_class(tool: str) -> type:
    class Checked(parameter_class(tool)):
        def check(self) -> None:
            spec = tool_spec(self.TOOL)
            self.SK_PARAM = parse_sk_params(self.SK_PARAM)
            if self.SAVE_MODEL:
                check_save_path(self.SAVE_MODEL)
            if not self.LOAD_MODEL:
                estimator_class(spec, self.METHOD)  # an unknown METHOD names itself before any work

        def size(self, tool: str | ToolSpec | None = None) -> int:
            return getattr(self, tool_spec(tool or self.TOOL).size_parameter)

    Checked.__name__ = Checked.__qualname__ = f"{tool.title()}Params"
    return Checked


@dataclass
class EstimatorRun:
    """What a reduction or cluster run works with once its model is ready."""

    params: EstimatorParams
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
def estimator_run(tool: str | ToolSpec, params: dict, reporter):
    """Check the parameters, open the input and fit or load the model; the input stays open inside."""
    from .raster_writing import check_output
    from .rasters import check_bands, extent_window, open_raster

    spec = tool_spec(tool)
    p = EstimatorParams.from_dict(params, spec)
    output = check_output(p.OUTPUT)
    with open_raster(p.INPUT) as src:
        bands = check_bands(src, p.BANDS)
        window = extent_window(src, p.EXTENT)
        model, stage = prepare_model(spec, p, src, bands, window, reporter)
        yield EstimatorRun(p, output, src, bands, window, model, stage)


def prepare_model(tool: str | ToolSpec, p: EstimatorParams, src, bands: list[int], window, reporter):
    """Load ``LOAD_MODEL``, or sample the raster and fit (saving to ``SAVE_MODEL``).

    Returns (model, reporter for the block-wise pass): progress 0-30 % sampling, 30-45 % fitting.
    """
    spec = tool_spec(tool)
    if p.LOAD_MODEL:
        model = load_model(p.LOAD_MODEL, spec.name, len(bands), trust=p.TRUST_MODEL, reporter=reporter)
        if model.get(legacy_models.LEGACY_KEY):  # IAMAP 1.0.2's .pkl: its scaler is fitted on this raster
            return model, legacy_models.complete(spec, model, p, src, bands, window, reporter)
        reporter.text(f"Applying the saved model: {describe(model)}. METHOD, SK_PARAM, SAMPLE_SIZE and "
                      f"{spec.size_parameter} are taken from the model.")
        return model, reporter
    from .sampling import sample_pixels

    size = fit_sample_limit(p.METHOD, p.SAMPLE_SIZE, len(bands), reporter)
    sample = sample_pixels(src, bands, window, size, p.RANDOM_SEED, reporter.stage(0, 30))
    if len(sample.values) < 2:
        raise ParameterError("EXTENT" if p.EXTENT else "INPUT",
                             f"{sample.valid_pixels} valid pixel(s) in the selected area: at least 2 are needed "
                             f"to fit. Check the nodata value of the bands, or choose a larger EXTENT.")
    reporter.text(f"Sample: {len(sample.values)} of {sample.valid_pixels} valid pixels, {len(bands)} band(s), "
                  f"seed {p.RANDOM_SEED}.")
    model, sample_output = fit_model(spec, p.METHOD, p.SK_PARAM, p.size(spec), p.RANDOM_SEED, sample.values,
                                     reporter)
    reporter.progress(45)
    model["metadata"].update(
        tool=spec.name, method=p.METHOD, bands=bands, band_count=len(bands), input=p.INPUT,
        fitted_pixels=len(sample.values), versions=library_versions(p.METHOD),
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        parameters={"SK_PARAM": p.SK_PARAM, "SAMPLE_SIZE": p.SAMPLE_SIZE, "RANDOM_SEED": p.RANDOM_SEED,
                    spec.size_parameter: p.size(spec)},
        estimator_parameters={k: repr(v) for k, v in model["estimator"].get_params(deep=False).items()},
        fit_figures=fit_figures(spec, model, sample.values, sample_output))
    if p.SAVE_MODEL:
        saved = save_model(model, p.SAVE_MODEL, reporter)
        reporter.text(f"Model saved to {saved}; LOAD_MODEL applies it again without fitting.")
    return model, reporter.stage(45, 100)
