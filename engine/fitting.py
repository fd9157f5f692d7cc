"""Fitting an estimator on a pixel sample behind a scaler, and applying the fitted pipeline to pixels.

A fitted model is a dict ``{"pipeline", "estimator", "metadata"}``: the scikit-learn Pipeline (scale ->
estimator, or scale -> nearest-neighbour stand-in for methods that cannot map new pixels), the fitted
estimator itself (for its figures and parameters; not saved in model files) and the record of the fit
(``metadata["apply"]`` says how the pipeline maps pixels; see :data:`APPLIERS`).
"""

from __future__ import annotations

import contextlib
import threading
import time
import warnings

import numpy as np

from .catalog import FIT_SAMPLE_LIMITS, HDBSCAN_HIGH_DIMENSION_LIMIT, HDBSCAN_HIGH_DIMENSIONS, NONNEGATIVE_METHODS
from .errors import ParameterError
from .estimator_registry import EstimatorSpec, apply_kind, build_estimator, estimator_spec
from .events import NULL_REPORTER
from .neighbour_apply import FAST_APPLIERS, library_apply_asked

#: Neighbours whose distance-weighted vote/average labels pixels for methods that cannot handle new points.
NEIGHBOURS = 5

#: How a fitted pipeline maps pixels (n, bands), by ``metadata["apply"]``.
APPLIERS = {
    "transform": lambda pipeline, values: pipeline.transform(values),
    "predict": lambda pipeline, values: pipeline.predict(values),
    "approximate_predict": lambda pipeline, values: _hdbscan_approximate_predict(pipeline, values),
}
#: What the fit gives for the sample itself, by how the pipeline maps pixels.
SAMPLE_OUTPUTS = {
    "transform": lambda pipeline, values: pipeline.fit_transform(values),
    "predict": lambda pipeline, values: pipeline.fit(values).predict(values),
    "approximate_predict": lambda pipeline, values: pipeline.fit(values)[-1].labels_,
}
#: What the fit gives for the sample of a transductive method (it has no way to map new pixels), by sample output.
TRANSDUCTIVE_SAMPLE_OUTPUTS = {
    "embedding": lambda pipeline, values: pipeline.fit_transform(values),
    "labels": lambda pipeline, values: pipeline.fit_predict(values),
}
#: The nearest-neighbour stand-in of transductive methods, by sample output: (class in sklearn.neighbors, what
#: each other pixel gets from its neighbours).
STAND_INS = {"embedding": ("KNeighborsRegressor", "average embedding"),
             "labels": ("KNeighborsClassifier", "majority label")}


def _hdbscan_approximate_predict(pipeline, values):
    # deferred: scikit-learn (about a second) loads when a model is fitted or applied, after the parameter checks
    import hdbscan

    return hdbscan.approximate_predict(pipeline[-1], pipeline[:-1].transform(values))[0]


def _hdbscan_defaults(values: np.ndarray) -> dict:
    # hdbscan's own default (clusters of 5 pixels) splits a raster into thousands of specks
    return {"min_cluster_size": max(5, len(values) // 200), "min_samples": 10}


#: Defaults that depend on the sample, set where SK_PARAM does not, by method.
SAMPLE_DEFAULTS = {"HDBSCAN": _hdbscan_defaults}


#: Warnings of the libraries meant for developers, not shown to the user.
DEVELOPER_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


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


def fit_model(tool: str | EstimatorSpec, method: str, sk_params: dict, size: int, seed: int, values: np.ndarray,
              reporter):
    """Fit scaler + estimator on ``values`` (n, bands); returns (model dict, sample output).

    The sample output is what the fit gave for the sample itself (``spec.sample_output``: the embedding or
    the labels), used for the figures and, for transductive methods, to train the nearest-neighbour stand-in.
    """
    # deferred: scikit-learn (about a second) loads when a model is fitted or applied, after the parameter checks
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    spec = estimator_spec(tool)
    estimator = build_estimator(spec, method, sk_params, size, seed, reporter)
    if method in SAMPLE_DEFAULTS:
        defaults = {k: v for k, v in SAMPLE_DEFAULTS[method](values).items() if k not in sk_params}
        estimator.set_params(**defaults)
        if defaults:
            reporter.text(f"{method} defaults of IAMAP: {defaults} (set them in SK_PARAM to change them).")
    # non-negative methods (NMF, LDA) need [0, 1]; clipping keeps unseen pixels non-negative
    scaler = MinMaxScaler(clip=True) if method in NONNEGATIVE_METHODS else StandardScaler()
    pipeline = Pipeline([("scale", scaler), ("estimator", estimator)])
    transductive = method in spec.transductive
    apply = apply_kind(spec, method)
    sample_output = (TRANSDUCTIVE_SAMPLE_OUTPUTS[spec.sample_output] if transductive else SAMPLE_OUTPUTS[apply])
    with ticking(reporter, f"Fitting {method} on {len(values)} pixels"), estimator_errors(spec, method), \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # umap-learn warns that a seed makes it single-threaded; the RANDOM_SEED help says so
        warnings.filterwarnings("ignore", message="n_jobs value .* overridden")
        output = sample_output(pipeline, values)
    # fewer distinct clusters than N_CLUSTERS, not converged, and the like: the user decides (library deprecations
    # are for developers)
    for message in dict.fromkeys(str(w.message) for w in caught if not issubclass(w.category, DEVELOPER_WARNINGS)):
        reporter.warning(f"{method}: {message}")
    if transductive:
        pipeline = nearest_neighbour_stand_in(spec, method, pipeline[0], values, output, reporter)
        apply = "predict"
    contiguous_arrays(pipeline)
    model = {"pipeline": pipeline, "estimator": estimator, "metadata": {"apply": apply}}
    return model, np.asarray(output)


def nearest_neighbour_stand_in(spec: EstimatorSpec, method: str, scaler, values: np.ndarray, output: np.ndarray,
                               reporter):
    """Scale -> k nearest neighbours trained on the fitted sample's output: maps the pixels that a transductive
    method cannot."""
    # deferred: scikit-learn (about a second) loads when a model is fitted or applied, after the parameter checks
    from sklearn import neighbors
    from sklearn.pipeline import Pipeline

    class_name, gets = STAND_INS[spec.sample_output]
    reporter.text(f"{method} cannot handle pixels outside the fitted sample: each other pixel gets the "
                  f"distance-weighted {gets} of its {NEIGHBOURS} nearest sampled pixels.")
    knn = getattr(neighbors, class_name)(NEIGHBOURS, weights="distance")
    knn.fit(scaler.transform(values), output)
    return Pipeline([("scale", scaler), ("nearest_fitted", knn)])


def contiguous_arrays(pipeline) -> None:
    """Give each step's strided array attributes their own contiguous copy, as a saved model gets them back.

    A model file stores arrays in C order (``.npy``): IncrementalPCA's ``components_``, a strided view when
    fitted, would come back contiguous and BLAS rounds differently on it (1e-16). With the copy the pipeline
    applied now and the one LOAD_MODEL gives back compute the same values, bit for bit.
    """
    for _, step in pipeline.steps:
        for name, value in vars(step).items():
            if isinstance(value, np.ndarray) and not (value.flags.c_contiguous or value.flags.f_contiguous):
                setattr(step, name, np.ascontiguousarray(value))


@contextlib.contextmanager
def estimator_errors(tool: str | EstimatorSpec, method: str):
    """Errors an estimator raises about its parameters or the data become messages for the user."""
    spec = estimator_spec(tool)
    try:
        yield
    except MemoryError:
        raise
    except (ValueError, TypeError) as exc:
        # a size keyword (n_components, n_clusters) is what the tool's size parameter sets
        parameter = spec.size_parameter if any(k in str(exc) for k in spec.size_keywords) else "SK_PARAM"
        raise ParameterError(parameter, f"{method} failed: {exc}") from None


def apply_model(model: dict, values: np.ndarray, library: bool | None = None) -> np.ndarray:
    """Map pixel vectors (n, bands) through a fitted model: embedding (n, k) or labels (n,).

    UMAP and HDBSCAN go through :data:`engine.neighbour_apply.FAST_APPLIERS` unless ``library`` (default: whether
    ``IAMAP_APPLY=library`` is set) asks for the libraries' own per-pixel paths."""
    pipeline = model["pipeline"]
    library = library_apply_asked() if library is None else library
    fast = None if library else FAST_APPLIERS.get(type(pipeline[-1]).__name__)
    output = fast(pipeline, values) if fast is not None else None
    return APPLIERS[model["metadata"]["apply"]](pipeline, values) if output is None else output


def embedding_figures(model: dict, values: np.ndarray, embedding: np.ndarray) -> dict:
    """Output count and, for PCA-like methods, the explained variance ratio of each component."""
    estimator = model["estimator"]
    figures = {"output_count": int(embedding.shape[1])}
    if hasattr(estimator, "explained_variance_ratio_"):
        figures["explained_variance_ratio"] = [float(v) for v in estimator.explained_variance_ratio_]
    return figures


def label_figures(model: dict, values: np.ndarray, labels: np.ndarray) -> dict:
    """Inertia, label range, clusters and noise pixels of the sample."""
    estimator = model["estimator"]
    labels = labels.astype(np.int64)
    if hasattr(estimator, "inertia_"):
        inertia = float(estimator.inertia_)
    else:  # the same quantity: squared distances to the cluster means, noise left out
        scaled = model["pipeline"][0].transform(values)
        members = (scaled[labels == k] for k in np.unique(labels[labels >= 0]))
        inertia = float(sum(((m - m.mean(axis=0)) ** 2).sum() for m in members))
    return {"inertia": inertia, "max_label": int(labels.max()), "clusters_in_sample": int(np.unique(
        labels[labels >= 0]).size), "noise_in_sample": int((labels < 0).sum())}


#: Figures of the fit, saved with the model, by sample output.
FIT_FIGURES = {"embedding": embedding_figures, "labels": label_figures}


def fit_figures(tool: str | EstimatorSpec, model: dict, values: np.ndarray, sample_output: np.ndarray) -> dict:
    """Figures of the fit, saved with the model: output count, explained variance, inertia, label range."""
    return FIT_FIGURES[estimator_spec(tool).sample_output](model, values, sample_output)


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
