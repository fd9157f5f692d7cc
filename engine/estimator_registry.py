"""What the estimator tools (reduction, cluster, ml) are made of: one declarative :class:`EstimatorSpec`
per tool, the estimator class behind each ``METHOD``, ``SK_PARAM`` parsing, and building an unfitted estimator.

Fitting is in :mod:`engine.fitting`, the shared run flow in :mod:`engine.estimator_run`, model files in
:mod:`engine.model_files`. A new tool is a new :class:`EstimatorSpec` in :data:`ESTIMATOR_SPECS` (plus its own fitting
code where it fits differently); nothing here compares tool names.
"""

from __future__ import annotations

import importlib
import json
import platform
from dataclasses import dataclass

from . import __version__
from .contract import TOOLS
from .catalog import CLUSTER_METHODS, CLUSTER_TRANSDUCTIVE, ML_METHODS, REDUCTION_METHODS, REDUCTION_TRANSDUCTIVE
from .diagnostics import installed_version
from .errors import IamapError, ParameterError
from .events import NULL_REPORTER


@dataclass(frozen=True)
class EstimatorSpec:
    """How one tool uses scikit-learn-style estimators.

    Attributes
    ----------
    name : str
        The tool id (``iamap:<name>``), recorded in its model files.
    methods : tuple of str
        The ``METHOD`` choices, first is the default (from :mod:`engine.catalog`, shared with the QGIS side).
    transductive : tuple of str
        Methods that cannot map new pixels: fitted on the sample, the other pixels get the output of their
        nearest sampled neighbours (see :data:`engine.fitting.STAND_INS`).
    size_keywords : tuple of str
        Estimator keywords the size fills, the first one the class has (GaussianMixture: n_components).
    sklearn_modules : tuple of str
        Modules searched, in order, for the scikit-learn class named by ``METHOD``.
    apply : str
        The pipeline method that maps new pixels (``transform``, ``predict``); :data:`APPLY_OVERRIDES` has
        the methods that differ.
    sample_output : str
        What the fit gives for the sample itself: ``"embedding"`` (n, k) or ``"labels"`` (n,). It chooses
        the fit figures and the nearest-neighbour stand-in of transductive methods.
    keywords_where_taken : tuple of (str, value)
        Keywords set for every method of the tool whose class takes them, unless SK_PARAM sets them.
    """

    name: str
    methods: tuple[str, ...]
    transductive: tuple[str, ...]
    size_keywords: tuple[str, ...]
    sklearn_modules: tuple[str, ...]
    apply: str
    sample_output: str
    keywords_where_taken: tuple[tuple[str, object], ...] = ()

    @property
    def size_parameter(self) -> str:
        """The parameter id that sets how many outputs the estimator makes (``N_COMPONENTS``, ``N_CLUSTERS``), as
        the contract declares it (:attr:`engine.contract.Tool.size_parameter`); "" where the tool has none (ml:
        the labels decide)."""
        return TOOLS[self.name].size_parameter


#: The estimator tools' specs, by tool id.
ESTIMATOR_SPECS = {spec.name: spec for spec in (
    EstimatorSpec("reduction", REDUCTION_METHODS, REDUCTION_TRANSDUCTIVE, ("n_components",),
                  ("sklearn.decomposition", "sklearn.manifold"), apply="transform", sample_output="embedding"),
    EstimatorSpec("cluster", CLUSTER_METHODS, CLUSTER_TRANSDUCTIVE, ("n_clusters", "n_components"),
                  ("sklearn.cluster", "sklearn.mixture"), apply="predict", sample_output="labels"),
    # supervised: fitted on labelled pixels by engine.ml; every core for the forests and neighbour searches
    EstimatorSpec("ml", ML_METHODS, (), (), ("sklearn.ensemble", "sklearn.neighbors", "sklearn.linear_model",
                                             "sklearn.svm", "sklearn.neural_network", "sklearn.naive_bayes",
                                             "sklearn.discriminant_analysis", "sklearn.tree"),
                  apply="predict", sample_output="labels", keywords_where_taken=(("n_jobs", -1),)),
)}

#: Methods whose class is not in scikit-learn: (module, class, distributions recorded in a model's versions).
OTHER_LIBRARIES = {"UMAP": ("umap", "UMAP", ("umap-learn", "pynndescent")),
                   "HDBSCAN": ("hdbscan", "HDBSCAN", ("hdbscan",))}
#: How the fitted pipeline maps pixels where the method differs from its tool's ``apply``.
APPLY_OVERRIDES = {"HDBSCAN": "approximate_predict"}  # hdbscan.HDBSCAN has no predict
#: Keywords IAMAP sets whatever SK_PARAM says, and why.
FORCED_KEYWORDS = {
    "HDBSCAN": {"prediction_data": True},  # needed by approximate_predict, which labels the other pixels
}
#: Keywords of a tool's ``keywords_where_taken`` that a method takes but should not get, and why.
KEYWORDS_NOT_SET = {"LogisticRegression": ("n_jobs",)}  # deprecated: no effect since scikit-learn 1.8
#: Keywords IAMAP sets unless SK_PARAM does, and why.
DEFAULT_KEYWORDS = {
    # below 4096 fitted pixels umap-learn keeps no search index and transforms with a Python-level metric call
    # per pixel pair: hours for a raster. The index makes transform fast whatever the sample size.
    "UMAP": {"force_approximation_algorithm": True},
    # a pixel with no training pixel within the radius would stop the prediction with an error
    "RadiusNeighborsClassifier": {"outlier_label": "most_frequent"},
}


def estimator_spec(tool: str | EstimatorSpec) -> EstimatorSpec:
    """The spec of ``tool`` (an :class:`EstimatorSpec` passes through)."""
    return tool if isinstance(tool, EstimatorSpec) else ESTIMATOR_SPECS[tool]


def estimator_class(tool: str | EstimatorSpec, method: str):
    """The estimator class behind ``METHOD`` for ``tool``."""
    spec = estimator_spec(tool)
    if method not in spec.methods:
        raise ParameterError("METHOD", f"unknown method {method!r} for {spec.name}; choose one of "
                                       f"{', '.join(spec.methods)}.")
    if method in OTHER_LIBRARIES:
        module_name, class_name, _ = OTHER_LIBRARIES[method]
        return getattr(importlib.import_module(module_name), class_name)
    for module_name in spec.sklearn_modules:
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


def size_keyword(spec: EstimatorSpec, valid: list[str]) -> str | None:
    """The keyword of the estimator that the size parameter fills; None where the method has none."""
    return next((name for name in spec.size_keywords if name in valid), None)


def build_estimator(tool: str | EstimatorSpec, method: str, sk_params: dict, size: int, seed: int,
                    reporter=NULL_REPORTER):
    """An unfitted estimator: ``SK_PARAM`` keywords over IAMAP's defaults.

    ``size`` is the tool's size parameter (N_COMPONENTS, N_CLUSTERS; ignored without one); the seed goes to
    ``random_state`` where the class takes one.
    """
    spec = estimator_spec(tool)
    cls = estimator_class(spec, method)
    valid = sorted(cls().get_params(deep=False))
    unknown = sorted(set(sk_params) - set(valid))
    if unknown:
        raise ParameterError("SK_PARAM", f"{method} has no parameter {', '.join(map(repr, unknown))}. "
                                         f"Valid parameters of {method}: {', '.join(valid)}.")
    taken = {name: value for name, value in spec.keywords_where_taken
             if name in valid and name not in KEYWORDS_NOT_SET.get(method, ())}
    size_name = size_keyword(spec, valid)
    if size_name in sk_params and sk_params[size_name] != size:
        label = TOOLS[spec.name][spec.size_parameter].label
        raise ParameterError("SK_PARAM", f"{size_name} = {sk_params[size_name]!r} conflicts with "
                                         f"{spec.size_parameter} = {size} (\u201c{label}\u201d), which sets the same "
                                         f"thing: remove {size_name} from SK_PARAM and set {spec.size_parameter}.")
    params = {**taken, **DEFAULT_KEYWORDS.get(method, {}), **sk_params, **FORCED_KEYWORDS.get(method, {})}
    if size_name and size_name not in params:
        params[size_name] = int(size)
    elif not size_name and spec.size_parameter:
        reporter.text(f"{spec.size_parameter} does not apply to {method}: it finds the number of clusters itself.")
    if "random_state" in valid and "random_state" not in params:
        params["random_state"] = int(seed)
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise ParameterError("SK_PARAM", f"{method} refused the parameters {params}: {exc}") from None


def apply_kind(spec: EstimatorSpec, method: str) -> str:
    """How the fitted pipeline of ``method`` maps pixels, before any nearest-neighbour stand-in."""
    return APPLY_OVERRIDES.get(method, spec.apply)


def library_versions(method: str) -> dict:
    """Versions recorded in a model file: a model is only loaded back under the same library versions."""
    libraries = ["scikit-learn", "numpy", "skops", *OTHER_LIBRARIES.get(method, (None, None, ()))[2]]
    return {"iamap": __version__, "python": platform.python_version(),
            **{lib: installed_version(lib) for lib in libraries}}
