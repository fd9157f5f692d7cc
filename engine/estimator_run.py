"""The flow shared by the estimator tools (reduction, cluster; later ml): check the parameters, open the input,
then load ``LOAD_MODEL`` or sample the raster and fit (saving to ``SAVE_MODEL``). The tool then writes its
raster from :class:`EstimatorRun` with :func:`engine.fitting.apply_model`."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import ParameterError
from .estimator_registry import ToolSpec, estimator_class, library_versions, parse_sk_params, tool_spec
from .fitting import fit_figures, fit_model, fit_sample_limit
from .model_files import check_save_path, describe, load_model, save_model

#: Pixels used to fit when SAMPLE_SIZE is not given: a few seconds of KMeans/PCA, under a minute of UMAP.
DEFAULT_SAMPLE_SIZE = 100_000


@dataclass
class EstimatorParams:
    """Parameters of ``iamap:reduction`` and ``iamap:cluster`` (each ignores the other's size parameter)."""

    INPUT: str
    OUTPUT: str
    METHOD: str = ""
    BANDS: list | None = None
    EXTENT: list | None = None
    SK_PARAM: object = None
    SAMPLE_SIZE: int = DEFAULT_SAMPLE_SIZE
    RANDOM_SEED: int = 0
    LOAD_MODEL: str = ""
    SAVE_MODEL: str = ""
    #: Load LOAD_MODEL even when it holds types outside IAMAP's allowlist or is a pickle (it may run code).
    TRUST_MODEL: bool = False
    N_COMPONENTS: int = 3
    N_CLUSTERS: int = 8

    @classmethod
    def from_dict(cls, params: dict, tool: str | ToolSpec) -> "EstimatorParams":
        spec = tool_spec(tool)
        p = cls(**{k: v for k, v in params.items() if k in cls.__dataclass_fields__ and v is not None})
        p.METHOD = p.METHOD or spec.methods[0]
        for name, minimum in (("SAMPLE_SIZE", 2), ("N_COMPONENTS", 1), ("N_CLUSTERS", 1)):
            value = int(getattr(p, name))
            if value < minimum:
                raise ParameterError(name, f"must be at least {minimum} (got {value}).")
            setattr(p, name, value)
        p.RANDOM_SEED = int(p.RANDOM_SEED)
        p.TRUST_MODEL = _boolean(p.TRUST_MODEL)
        p.SK_PARAM = parse_sk_params(p.SK_PARAM)
        if p.SAVE_MODEL:
            check_save_path(p.SAVE_MODEL)  # refused before the sample is read
        if not p.LOAD_MODEL:
            estimator_class(spec, p.METHOD)  # an unknown METHOD fails before the sample is read
        return p

    def size(self, tool: str | ToolSpec) -> int:
        return getattr(self, tool_spec(tool).size_parameter)


def _boolean(value) -> bool:
    """A boolean parameter from JSON or the command line ("true", "1", ...): only an explicit yes is true."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


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
    from .rasters import check_bands, check_output, extent_window, open_raster

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
