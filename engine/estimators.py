"""Estimators of the reduction and cluster tools (and later ml): building them from ``METHOD`` and
``SK_PARAM``, fitting them on a pixel sample behind a scaler, and saving, loading and applying the result.

A fitted model is a plain dict, saved with joblib::

    {"format": "iamap-model", "format_version": 1,
     "metadata": {"tool", "method", "parameters", "bands", "band_count", "apply", "versions", ...},
     "pipeline": sklearn Pipeline (scale -> estimator, or scale -> nearest-neighbour stand-in),
     "estimator": the fitted estimator itself}

``metadata["apply"]`` says how the pipeline maps pixels: ``transform`` (reductions), ``predict``
(clusterers with a predict method, and the nearest-neighbour stand-in of methods that cannot handle new
points), or ``approximate_predict`` (HDBSCAN).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import platform
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__
from .catalog import (CLUSTER_METHODS, CLUSTER_TRANSDUCTIVE, FIT_SAMPLE_LIMITS, HDBSCAN_HIGH_DIMENSION_LIMIT,
                      HDBSCAN_HIGH_DIMENSIONS, NONNEGATIVE_METHODS, REDUCTION_METHODS, REDUCTION_TRANSDUCTIVE)
from .diagnostics import installed_version
from .errors import IamapError, ParameterError
from .events import NULL_REPORTER

MODEL_FORMAT = "iamap-model"
MODEL_FORMAT_VERSION = 1
MODEL_SUFFIXES = (".joblib", ".pkl")
#: Neighbours whose distance-weighted vote/average labels pixels for methods that cannot handle new points.
NEIGHBOURS = 5
#: Pixels used to fit when SAMPLE_SIZE is not given: a few seconds of KMeans/PCA, under a minute of UMAP.
DEFAULT_SAMPLE_SIZE = 100_000

METHODS = {"reduction": REDUCTION_METHODS, "cluster": CLUSTER_METHODS}
#: The parameter that sets how many outputs the estimator makes.
SIZE_PARAMETER = {"reduction": "N_COMPONENTS", "cluster": "N_CLUSTERS"}
TRANSDUCTIVE = {"reduction": REDUCTION_TRANSDUCTIVE, "cluster": CLUSTER_TRANSDUCTIVE}
#: Where the scikit-learn classes of each tool live.
SKLEARN_MODULES = {"reduction": ("sklearn.decomposition", "sklearn.manifold"),
                   "cluster": ("sklearn.cluster", "sklearn.mixture")}
#: Libraries whose objects a model holds, by method; scikit-learn is always one of them.
EXTRA_LIBRARIES = {"UMAP": "umap-learn", "HDBSCAN": "hdbscan"}


def estimator_class(tool: str, method: str):
    """The estimator class behind ``METHOD`` for ``tool``."""
    if method not in METHODS[tool]:
        raise ParameterError("METHOD", f"unknown method {method!r} for {tool}; choose one of "
                                       f"{', '.join(METHODS[tool])}.")
    if method == "UMAP":
        import umap
        return umap.UMAP
    if method == "HDBSCAN":
        import hdbscan
        return hdbscan.HDBSCAN
    for module_name in SKLEARN_MODULES[tool]:
        module = importlib.import_module(module_name)
        if hasattr(module, method):
            return getattr(module, method)
    raise IamapError(f"{method} is not in this scikit-learn ({installed_version('scikit-learn')}); reinstall the "
                     f"IAMAP environment.")


def parse_sk_params(value) -> dict:
    """``SK_PARAM`` as a dict: a JSON object (text) or a dict; empty means no extra keyword."""
    if value in (None, "", {}):
        return {}
    if isinstance(value, dict):
        return dict(value)
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise ParameterError("SK_PARAM", f"not valid JSON ({exc}); write a JSON object such as "
                                         f'{{"max_iter": 500, "init": "k-means++"}}.') from None
    if not isinstance(parsed, dict):
        raise ParameterError("SK_PARAM", f'must be a JSON object such as {{"max_iter": 500}}, not {value!r}.')
    return parsed


def build_estimator(tool: str, method: str, sk_params: dict, size: int, seed: int, reporter=NULL_REPORTER):
    """An unfitted estimator: ``SK_PARAM`` keywords over IAMAP's defaults.

    ``size`` is N_COMPONENTS (reduction) or N_CLUSTERS (cluster); the seed goes to ``random_state``.
    """
    cls = estimator_class(tool, method)
    valid = sorted(cls().get_params(deep=False))
    unknown = sorted(set(sk_params) - set(valid))
    if unknown:
        raise ParameterError("SK_PARAM", f"{method} has no parameter {', '.join(map(repr, unknown))}. "
                                         f"Valid parameters of {method}: {', '.join(valid)}.")
    params = dict(sk_params)
    size_name = _size_keyword(tool, valid)
    if size_name and size_name not in params:
        params[size_name] = int(size)
    elif not size_name:
        reporter.text(f"{SIZE_PARAMETER[tool]} does not apply to {method}: it finds the number of clusters itself.")
    if "random_state" in valid and "random_state" not in params:
        params["random_state"] = int(seed)
    if method == "HDBSCAN":
        params["prediction_data"] = True  # needed by approximate_predict, which labels the other pixels
    if method == "UMAP":
        # below 4096 fitted pixels umap-learn keeps no search index and transforms with a Python-level metric
        # call per pixel pair: hours for a raster. The index makes transform fast whatever the sample size.
        params.setdefault("force_approximation_algorithm", True)
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise ParameterError("SK_PARAM", f"{method} refused the parameters {params}: {exc}") from None


def _size_keyword(tool: str, valid: list[str]) -> str | None:
    if tool == "reduction":
        return "n_components" if "n_components" in valid else None
    for name in ("n_clusters", "n_components"):  # n_components: GaussianMixture
        if name in valid:
            return name
    return None


def fit_sample_limit(method: str, sample_size: int, band_count: int, reporter=NULL_REPORTER) -> int:
    """``SAMPLE_SIZE``, lowered for methods whose memory or time grows with the square of the sample."""
    limit = FIT_SAMPLE_LIMITS.get(method)
    if method == "HDBSCAN" and band_count > HDBSCAN_HIGH_DIMENSIONS:
        limit = HDBSCAN_HIGH_DIMENSION_LIMIT
        if sample_size > limit:
            reporter.warning(f"HDBSCAN on {band_count} bands is slow (an exact search above "
                             f"{HDBSCAN_HIGH_DIMENSIONS} bands); reduce the bands first with iamap:reduction "
                             f"(e.g. PCA to 16 components) for a faster and usually better clustering.")
    if limit is not None and sample_size > limit:
        reporter.warning(f"{method} needs memory or time that grows with the square of the sample: it is "
                         f"fitted on {limit} of the SAMPLE_SIZE={sample_size} pixels.")
        return limit
    return sample_size


def fit_model(tool: str, method: str, sk_params: dict, size: int, seed: int, values: np.ndarray, reporter):
    """Fit scaler + estimator on ``values`` (n, bands); returns (model dict without metadata, sample output).

    The sample output is what the fit gave for the sample itself: the embedding (reduction) or the labels
    (cluster), used for the figures and, for transductive methods, to train the nearest-neighbour stand-in.
    """
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    estimator = build_estimator(tool, method, sk_params, size, seed, reporter)
    if method == "HDBSCAN":
        # hdbscan's own default (clusters of 5 pixels) splits a raster into thousands of specks
        defaults = {"min_cluster_size": max(5, len(values) // 200), "min_samples": 10}
        defaults = {k: v for k, v in defaults.items() if k not in sk_params}
        estimator.set_params(**defaults)
        if defaults:
            reporter.text(f"HDBSCAN defaults of IAMAP: {defaults} (set them in SK_PARAM to change them).")
    # non-negative methods (NMF, LDA) need [0, 1]; clipping keeps unseen pixels non-negative
    scaler = MinMaxScaler(clip=True) if method in NONNEGATIVE_METHODS else StandardScaler()
    pipeline = Pipeline([("scale", scaler), ("estimator", estimator)])
    transductive = method in TRANSDUCTIVE[tool]
    with ticking(reporter, f"Fitting {method} on {len(values)} pixels"), _estimator_errors(tool, method), \
            warnings.catch_warnings():
        # umap-learn warns that a seed makes it single-threaded; the RANDOM_SEED help says so
        warnings.filterwarnings("ignore", message="n_jobs value .* overridden")
        if tool == "reduction":
            sample_output = pipeline.fit_transform(values)
        elif transductive:
            sample_output = pipeline.fit_predict(values)
        elif method == "HDBSCAN":
            sample_output = pipeline.fit(values)[-1].labels_
        else:
            sample_output = pipeline.fit(values).predict(values)
    apply = {"reduction": "transform", "cluster": "predict"}[tool]
    if method == "HDBSCAN":
        apply = "approximate_predict"
    if transductive:
        reporter.text(f"{method} cannot handle pixels outside the fitted sample: each other pixel gets the "
                      f"distance-weighted {'average embedding' if tool == 'reduction' else 'majority label'} "
                      f"of its {NEIGHBOURS} nearest sampled pixels.")
        from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

        knn = (KNeighborsRegressor if tool == "reduction" else KNeighborsClassifier)(NEIGHBOURS, weights="distance")
        knn.fit(pipeline[0].transform(values), sample_output)
        pipeline = Pipeline([("scale", pipeline[0]), ("nearest_fitted", knn)])
        apply = "predict"
    model = {"format": MODEL_FORMAT, "format_version": MODEL_FORMAT_VERSION, "pipeline": pipeline,
             "estimator": estimator, "metadata": {"apply": apply}}
    return model, np.asarray(sample_output)


@contextlib.contextmanager
def _estimator_errors(tool: str, method: str):
    """Errors an estimator raises about its parameters or the data become messages for the user."""
    try:
        yield
    except MemoryError:
        raise
    except (ValueError, TypeError) as exc:
        # n_components is what N_COMPONENTS (reduction) or N_CLUSTERS (GaussianMixture) sets
        parameter = SIZE_PARAMETER[tool] if "n_components" in str(exc) else "SK_PARAM"
        raise ParameterError(parameter, f"{method} failed: {exc}") from None


def apply_model(model: dict, values: np.ndarray) -> np.ndarray:
    """Map pixel vectors (n, bands) through a fitted model: embedding (n, k) or labels (n,)."""
    pipeline, apply = model["pipeline"], model["metadata"]["apply"]
    if apply == "transform":
        return pipeline.transform(values)
    if apply == "approximate_predict":
        import hdbscan
        return hdbscan.approximate_predict(pipeline[-1], pipeline[:-1].transform(values))[0]
    return pipeline.predict(values)


def library_versions(method: str) -> dict:
    libraries = ["scikit-learn", "numpy"] + ([EXTRA_LIBRARIES[method]] if method in EXTRA_LIBRARIES else [])
    return {"iamap": __version__, "python": platform.python_version(), **{lib: installed_version(lib) for lib in libraries}}


def describe(model: dict) -> str:
    meta = model["metadata"]
    return (f"{meta['method']} ({meta['tool']}) fitted on {meta.get('fitted_pixels', '?')} pixels of "
            f"{meta.get('band_count')} band(s) from {Path(meta.get('input', '?')).name}")


def save_model(model: dict, path: str) -> Path:
    """Write ``model`` with joblib, atomically (a half-written file never carries the final name)."""
    import joblib

    target = Path(path)
    if target.suffix.lower() not in MODEL_SUFFIXES:
        raise ParameterError("SAVE_MODEL", f"{target.name}: give a file name ending in .joblib.")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    joblib.dump(model, tmp, compress=3)
    os.replace(tmp, target)
    return target


def load_model(path: str, tool: str, band_count: int) -> dict:
    """Load a model saved by :func:`save_model` and check that it fits ``tool`` and the selected bands."""
    import joblib

    source = Path(path)
    if not source.is_file():
        raise ParameterError("LOAD_MODEL", f"{path} does not exist.")
    try:
        model = joblib.load(source)
    except Exception as exc:  # any unpickling failure: a foreign or damaged file
        raise ParameterError("LOAD_MODEL", f"cannot read {source.name} as an IAMAP model ({type(exc).__name__}: "
                                           f"{exc}). Load a file written by SAVE_MODEL.") from None
    if not isinstance(model, dict) or model.get("format") != MODEL_FORMAT:
        raise ParameterError("LOAD_MODEL", f"{source.name} is not an IAMAP model file (written by SAVE_MODEL).")
    meta = model["metadata"]
    if model.get("format_version") != MODEL_FORMAT_VERSION:
        raise ParameterError("LOAD_MODEL", f"{source.name} is an IAMAP model of format {model.get('format_version')}"
                                           f", this IAMAP {__version__} reads format {MODEL_FORMAT_VERSION}; fit "
                                           f"the model again.")
    if meta.get("tool") != tool:
        raise ParameterError("LOAD_MODEL", f"{source.name} is a {meta.get('tool')} model ({meta.get('method')}); "
                                           f"load it in iamap:{meta.get('tool')}, not iamap:{tool}.")
    saved, current = meta.get("versions", {}), library_versions(meta["method"])
    for library in current:
        if library in ("iamap", "python", "numpy"):
            continue
        if saved.get(library) != current[library]:
            raise ParameterError("LOAD_MODEL", f"{source.name} was saved with {library} {saved.get(library)}; this "
                                               f"IAMAP environment has {library} {current[library]}, and models "
                                               f"cannot be moved safely between versions. Fit the model again "
                                               f"(leave LOAD_MODEL empty) with the same parameters.")
    if meta.get("band_count") != band_count:
        raise ParameterError("BANDS", f"the model in {source.name} was fitted on {meta.get('band_count')} band(s) "
                                      f"(bands {meta.get('bands')} of {Path(meta.get('input', '?')).name}); the "
                                      f"selected input has {band_count}. Select the same bands, or fit a new model.")
    return model


@contextlib.contextmanager
def ticking(reporter, what: str, every: float = 15.0):
    """Report ``what`` now and how long it has run every ``every`` seconds: fits give no progress of their own,
    and a silent minute looks like a hang."""
    reporter.text(f"{what}...")
    done = threading.Event()
    start = time.monotonic()

    def tick():
        while not done.wait(every):
            reporter.text(f"{what}: {time.monotonic() - start:.0f} s")

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        reporter.text(f"{what}: done in {time.monotonic() - start:.1f} s.")


# The flow shared by the reduction and cluster tools ---------------------------------------------------------

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
    N_COMPONENTS: int = 3
    N_CLUSTERS: int = 8

    @classmethod
    def from_dict(cls, params: dict, tool: str) -> "EstimatorParams":
        p = cls(**{k: v for k, v in params.items() if k in cls.__dataclass_fields__ and v is not None})
        p.METHOD = p.METHOD or METHODS[tool][0]
        for name, minimum in (("SAMPLE_SIZE", 2), ("N_COMPONENTS", 1), ("N_CLUSTERS", 1)):
            value = int(getattr(p, name))
            if value < minimum:
                raise ParameterError(name, f"must be at least {minimum} (got {value}).")
            setattr(p, name, value)
        p.RANDOM_SEED = int(p.RANDOM_SEED)
        p.SK_PARAM = parse_sk_params(p.SK_PARAM)
        if not p.LOAD_MODEL:
            estimator_class(tool, p.METHOD)  # an unknown METHOD fails before the sample is read
        return p

    def size(self, tool: str) -> int:
        return getattr(self, SIZE_PARAMETER[tool])


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
def estimator_run(tool: str, params: dict, reporter):
    """Check the parameters, open the input and fit or load the model; the input stays open inside."""
    from .rasters import check_bands, check_output, extent_window, open_raster

    p = EstimatorParams.from_dict(params, tool)
    output = check_output(p.OUTPUT)
    with open_raster(p.INPUT) as src:
        bands = check_bands(src, p.BANDS)
        window = extent_window(src, p.EXTENT)
        model, stage = prepare_model(tool, p, src, bands, window, reporter)
        yield EstimatorRun(p, output, src, bands, window, model, stage)


def prepare_model(tool: str, p: EstimatorParams, src, bands: list[int], window, reporter):
    """Load ``LOAD_MODEL``, or sample the raster and fit (saving to ``SAVE_MODEL``).

    Returns (model, reporter for the block-wise pass): progress 0-30 % sampling, 30-45 % fitting.
    """
    if p.LOAD_MODEL:
        model = load_model(p.LOAD_MODEL, tool, len(bands))
        reporter.text(f"Applying the saved model: {describe(model)}. METHOD, SK_PARAM, SAMPLE_SIZE and "
                      f"{SIZE_PARAMETER[tool]} are taken from the model.")
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
    model, sample_output = fit_model(tool, p.METHOD, p.SK_PARAM, p.size(tool), p.RANDOM_SEED, sample.values,
                                     reporter)
    reporter.progress(45)
    model["metadata"].update(
        tool=tool, method=p.METHOD, bands=bands, band_count=len(bands), input=p.INPUT,
        fitted_pixels=len(sample.values), versions=library_versions(p.METHOD),
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        parameters={"SK_PARAM": p.SK_PARAM, "SAMPLE_SIZE": p.SAMPLE_SIZE, "RANDOM_SEED": p.RANDOM_SEED,
                    SIZE_PARAMETER[tool]: p.size(tool)},
        estimator_parameters={k: repr(v) for k, v in model["estimator"].get_params(deep=False).items()},
        fit_figures=fit_figures(tool, model, sample.values, sample_output))
    if p.SAVE_MODEL:
        saved = save_model(model, p.SAVE_MODEL)
        reporter.text(f"Model saved to {saved}; LOAD_MODEL applies it again without fitting.")
    return model, reporter.stage(45, 100)


def fit_figures(tool: str, model: dict, values: np.ndarray, sample_output: np.ndarray) -> dict:
    """Figures of the fit, saved with the model: output count, explained variance, inertia, label range."""
    estimator = model["estimator"]
    if tool == "reduction":
        figures = {"output_count": int(sample_output.shape[1])}
        if hasattr(estimator, "explained_variance_ratio_"):
            figures["explained_variance_ratio"] = [float(v) for v in estimator.explained_variance_ratio_]
        return figures
    labels = sample_output.astype(np.int64)
    if hasattr(estimator, "inertia_"):
        inertia = float(estimator.inertia_)
    else:  # the same quantity: squared distances to the cluster means, noise left out
        scaled = model["pipeline"][0].transform(values)
        members = (scaled[labels == k] for k in np.unique(labels[labels >= 0]))
        inertia = float(sum(((m - m.mean(axis=0)) ** 2).sum() for m in members))
    return {"inertia": inertia, "max_label": int(labels.max()), "clusters_in_sample": int(np.unique(
        labels[labels >= 0]).size), "noise_in_sample": int((labels < 0).sum())}
