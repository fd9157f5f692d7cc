"""The fitted pipeline inside a model file, stored so that loading it cannot run code.

A pickle (joblib) runs whatever code its author put in it the moment it is loaded, so IAMAP does not write
or read them. The pipeline is stored with skops' secure persistence (``skops.io``): a zip of a JSON schema,
where every object is a node naming its type (module and class), and of ``.npy`` arrays read by numpy without
pickle. Before anything is constructed, :func:`payload_types` lists every type the schema names and IAMAP
compares them with :data:`ALLOWED_TYPES`: the types that IAMAP's own pipelines hold, for every method of
``engine.catalog`` (``tests/engine/test_model_payload.py`` fits each method and checks the list is exactly
what they need). A type outside it, even one skops would trust by default, is loaded only when the user
trusts that one file (``TRUST_MODEL``); skops' own audit then runs with exactly the types found.

Two estimators cannot go through skops as objects, and are rebuilt from their data instead (:data:`REBUILT`):

- ``umap.UMAP`` holds numba-compiled functions: its distance functions, and in its pynndescent search index
  the search, sort and distance functions. Compiled functions are code, not data: skops cannot store them
  (only pickle could). IAMAP stores UMAP's other attributes (arrays, numbers, strings, the sparse graph), the
  names of its three distance functions, and the index's state as pynndescent's own ``__getstate__`` gives it
  less its compiled functions. On load the distance functions are looked up by name in ``umap.distances``
  and ``pynndescent.distances`` only, and pynndescent's ``__setstate__`` compiles the search function again
  from the metric name, as unpickling the index does: the transform is the same.
- ``sklearn.cluster.Birch`` is refused by skops (its CF-tree is a graph of ``_CFNode`` objects). ``predict``
  only needs the subcluster centres, their norms and labels; the tree, used only to go on fitting
  (``partial_fit``), is left out and Birch is rebuilt from its other attributes.
"""

from __future__ import annotations

import copy
import importlib
import io
import json
import zipfile

from .errors import IamapError

#: Plain values (as skops names their types): containers, numbers, arrays, a seeded generator, sparse graphs.
VALUE_TYPES = frozenset({
    *(f"builtins.{name}" for name in ("dict", "list", "tuple", "str", "int", "float", "bool")),
    "numpy.ndarray", "numpy.random.mtrand.RandomState", "scipy.sparse._csr.csr_array", "scipy.sparse._csr.csr_matrix",
    *(f"numpy.{name}" for name in ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                                   "float16", "float32", "float64")),
})
#: The classes (and one function) that IAMAP's fitted pipelines hold, for every method of the catalogue (ml: with
#: two classes, more classes, and a number).
ESTIMATOR_TYPES = frozenset({
    # the pipeline and its scalers
    "sklearn.pipeline.Pipeline", "sklearn.preprocessing._data.StandardScaler",
    "sklearn.preprocessing._data.MinMaxScaler",
    # reduction methods (UMAP is rebuilt from data: see REBUILT)
    "sklearn.decomposition._pca.PCA", "sklearn.decomposition._incremental_pca.IncrementalPCA",
    "sklearn.decomposition._kernel_pca.KernelPCA", "sklearn.preprocessing._data.KernelCenterer",
    "sklearn.decomposition._truncated_svd.TruncatedSVD", "sklearn.decomposition._fastica.FastICA",
    "sklearn.decomposition._factor_analysis.FactorAnalysis", "sklearn.decomposition._nmf.NMF",
    "sklearn.decomposition._nmf.MiniBatchNMF", "sklearn.decomposition._sparse_pca.SparsePCA",
    "sklearn.decomposition._sparse_pca.MiniBatchSparsePCA",
    "sklearn.decomposition._dict_learning.MiniBatchDictionaryLearning",
    "sklearn.decomposition._lda.LatentDirichletAllocation",
    "sklearn.manifold._isomap.Isomap", "sklearn.manifold._locally_linear.LocallyLinearEmbedding",
    # cluster methods (Birch is rebuilt from data: see REBUILT)
    "sklearn.cluster._kmeans.KMeans", "sklearn.cluster._kmeans.MiniBatchKMeans",
    "sklearn.cluster._bisect_k_means.BisectingKMeans", "sklearn.cluster._bisect_k_means._BisectingTree",
    "sklearn.cluster._kmeans._kmeans_single_lloyd",  # a function BisectingKMeans keeps (its algorithm)
    "sklearn.mixture._gaussian_mixture.GaussianMixture", "sklearn.cluster._mean_shift.MeanShift",
    "sklearn.cluster._affinity_propagation.AffinityPropagation",
    "hdbscan.hdbscan_.HDBSCAN", "hdbscan.prediction.PredictionData", "hdbscan.dist_metrics.EuclideanDistance",
    "joblib.memory.Memory",  # HDBSCAN's default `memory` parameter: a cache without a folder, inert once fitted
    # neighbour searches: Isomap, LocallyLinearEmbedding, HDBSCAN, and the stand-in of transductive methods
    "sklearn.neighbors._unsupervised.NearestNeighbors", "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.neighbors._regression.KNeighborsRegressor", "sklearn.neighbors._classification.KNeighborsClassifier",
    # ml methods: ensembles and the trees inside them (sklearn.tree._tree.Tree holds its nodes as arrays)
    "sklearn.ensemble._forest.RandomForestClassifier", "sklearn.ensemble._forest.RandomForestRegressor",
    "sklearn.ensemble._forest.ExtraTreesClassifier", "sklearn.ensemble._forest.ExtraTreesRegressor",
    "sklearn.ensemble._gb.GradientBoostingClassifier", "sklearn.ensemble._gb.GradientBoostingRegressor",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingRegressor",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.ensemble._weight_boosting.AdaBoostClassifier", "sklearn.ensemble._weight_boosting.AdaBoostRegressor",
    "sklearn.ensemble._bagging.BaggingClassifier", "sklearn.ensemble._bagging.BaggingRegressor",
    "sklearn.tree._classes.DecisionTreeClassifier", "sklearn.tree._classes.DecisionTreeRegressor",
    "sklearn.tree._classes.ExtraTreeClassifier", "sklearn.tree._classes.ExtraTreeRegressor", "sklearn.tree._tree.Tree",
    "sklearn.dummy.DummyClassifier", "sklearn.dummy.DummyRegressor",  # the initial estimate of gradient boosting
    # the losses and links gradient boosting keeps (compiled loss functions named by class, holding no code)
    "sklearn._loss._loss.CyHalfBinomialLoss", "sklearn._loss._loss.CyHalfMultinomialLoss",
    "sklearn._loss._loss.CyHalfSquaredError", "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn._loss.loss.HalfMultinomialLoss", "sklearn._loss.loss.HalfSquaredError", "sklearn._loss.link.Interval",
    "sklearn._loss.link.LogitLink", "sklearn._loss.link.MultinomialLogit", "sklearn._loss.link.IdentityLink",
    "numpy.random._generator.Generator",  # HistGradientBoosting's seeded generator
    # ml methods: neighbours, linear, SVM, naive Bayes, discriminant, MLP
    "sklearn.neighbors._classification.RadiusNeighborsClassifier",
    "sklearn.neighbors._regression.RadiusNeighborsRegressor", "sklearn.neighbors._nearest_centroid.NearestCentroid",
    "sklearn.linear_model._logistic.LogisticRegression", "sklearn.linear_model._ridge.RidgeClassifier",
    "sklearn.linear_model._ridge.Ridge", "sklearn.linear_model._base.LinearRegression",
    "sklearn.linear_model._coordinate_descent.Lasso", "sklearn.linear_model._coordinate_descent.ElasticNet",
    "sklearn.linear_model._stochastic_gradient.SGDClassifier", "sklearn.linear_model._stochastic_gradient.SGDRegressor",
    "sklearn.linear_model._sgd_fast.Hinge",  # SGDClassifier's default loss
    "sklearn.svm._classes.SVC", "sklearn.svm._classes.SVR", "sklearn.svm._classes.LinearSVC",
    "sklearn.svm._classes.LinearSVR", "sklearn.naive_bayes.GaussianNB",
    "sklearn.discriminant_analysis.LinearDiscriminantAnalysis",
    "sklearn.neural_network._multilayer_perceptron.MLPClassifier",
    "sklearn.neural_network._multilayer_perceptron.MLPRegressor",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.preprocessing._label.LabelBinarizer", "sklearn.preprocessing._label.LabelEncoder",
})
#: Every type (``module.name``, as skops names them) that a model file may hold without TRUST_MODEL.
ALLOWED_TYPES = VALUE_TYPES | ESTIMATOR_TYPES

#: Where UMAP's distance functions may be looked up by name when a UMAP is rebuilt.
DISTANCE_MODULES = ("umap.distances", "pynndescent.distances")
_UMAP_FUNCTIONS = ("_input_distance_func", "_inverse_distance_func", "_output_distance_func")
#: Compiled (or numpy ufunc) attributes of a pynndescent index: set again by its ``__setstate__``.
_INDEX_FUNCTIONS = ("_distance_func", "_true_distance_func", "_distance_correction", "_deheap_function",
                    "_rerank_function")


class PayloadError(IamapError):
    """The payload of a model file cannot be read (damaged, or not written by IAMAP)."""


def _type_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


# Rebuilt estimators ---------------------------------------------------------------------------------------

def _umap_state(model) -> dict:
    # deferred: this module reads a model file's record with the standard library; numpy only unpacks a payload
    import numpy as np

    state = {k: v for k, v in model.__dict__.items() if k not in _UMAP_FUNCTIONS and k != "_knn_search_index"}
    functions = {}
    for name in _UMAP_FUNCTIONS:
        function = getattr(model, name, None)
        if function is not None and (function.__module__ not in DISTANCE_MODULES
                                     or getattr(importlib.import_module(function.__module__),
                                                function.__name__, None) is not function):
            raise PayloadError(f"UMAP's {name} ({function!r}) is not a named distance of umap-learn or pynndescent")
        functions[name] = None if function is None else f"{function.__module__}:{function.__name__}"
    index = model.__dict__.get("_knn_search_index")
    index_state = None
    if index is not None:
        index_state = {k: v for k, v in index.__getstate__().items() if k not in _INDEX_FUNCTIONS}
        index_state["_input_dtype"] = np.dtype(index_state["_input_dtype"]).str
    return {"attributes": state, "functions": functions, "search_index": index_state}


def _umap_from_state(state: dict):
    # deferred: this module reads a model file's record with the standard library; numpy only unpacks a payload
    import numpy as np
    import umap
    from pynndescent import NNDescent

    model = umap.UMAP.__new__(umap.UMAP)
    model.__dict__.update(state["attributes"])
    for name, path in state["functions"].items():
        if name not in _UMAP_FUNCTIONS:
            raise PayloadError(f"unexpected UMAP attribute {name!r}")
        setattr(model, name, None if path is None else _distance_function(path))
    if state["search_index"] is not None:
        index_state = dict(state["search_index"])
        index_state["_input_dtype"] = np.dtype(index_state["_input_dtype"]).type
        index_state["_distance_correction"] = None  # set again from the metric where it has one
        index = NNDescent.__new__(NNDescent)
        index.__setstate__(index_state)  # compiles the search function from the metric name, as unpickling does
        model._knn_search_index = index
    return model


def _distance_function(path: str):
    module_name, _, name = path.partition(":")
    if module_name not in DISTANCE_MODULES:
        raise PayloadError(f"distance function {path!r} is not from {' or '.join(DISTANCE_MODULES)}")
    function = getattr(importlib.import_module(module_name), name, None)
    if function is None or not hasattr(function, "py_func"):  # a numba-compiled distance, nothing else
        raise PayloadError(f"{path!r} is not a compiled distance function")
    return function


def _birch_state(model) -> dict:
    return {"attributes": {k: v for k, v in model.__dict__.items() if k not in ("root_", "dummy_leaf_")}}


def _birch_from_state(state: dict):
    # deferred: scikit-learn (about a second) loads when a model is fitted or applied, after the parameter checks
    from sklearn.cluster import Birch

    model = Birch.__new__(Birch)
    model.__dict__.update(state["attributes"])
    return model


#: Estimators stored as their data and rebuilt on load: class path -> (state of a fitted one, rebuild).
REBUILT = {
    "umap.umap_.UMAP": (_umap_state, _umap_from_state),
    "sklearn.cluster._birch.Birch": (_birch_state, _birch_from_state),
}


# Writing and reading --------------------------------------------------------------------------------------

def payload_bytes(pipeline) -> bytes:
    """The skops bytes of a fitted pipeline (its estimator stored as data where :data:`REBUILT` says so).

    Raises PayloadError when some object of the pipeline cannot be stored without pickle.
    """
    # deferred: skops loads scikit-learn; only a payload's (un)packing needs it
    import skops.io as sio

    estimator = pipeline[-1]
    rebuilt = None
    if _type_path(type(estimator)) in REBUILT:
        rebuilt = {"class": _type_path(type(estimator)), "state": REBUILT[_type_path(type(estimator))][0](estimator)}
        pipeline = copy.copy(pipeline)  # the same fitted steps, the estimator's one a placeholder
        pipeline.steps = [*pipeline.steps[:-1], (pipeline.steps[-1][0], "passthrough")]
    try:
        return sio.dumps({"pipeline": pipeline, "rebuilt": rebuilt}, compression=zipfile.ZIP_DEFLATED)
    except Exception as exc:  # an object skops has no safe way to store (from some SK_PARAM value)
        raise PayloadError(f"skops cannot store it safely ({type(exc).__name__}: {exc})") from None


def payload_types(data: bytes) -> set[str]:
    """Every type the payload names, read from its schema without constructing or importing anything."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            schema = json.loads(archive.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(f"its payload is not a skops archive ({type(exc).__name__}: {exc})") from None
    found: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "__module__" in node and "__class__" in node:
                found.add(f"{node['__module__']}.{node['__class__']}")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def load_payload(data: bytes, trusted: set[str]):
    """The fitted pipeline from payload bytes; ``trusted``: the types allowed (checked again by skops' audit)."""
    # deferred: skops loads scikit-learn; only a payload's (un)packing needs it
    import skops.io as sio
    from sklearn.pipeline import Pipeline

    try:
        content = sio.loads(data, trusted=sorted(trusted))
    except Exception as exc:  # a damaged or foreign payload, whatever skops or numpy raise about it
        raise PayloadError(f"its payload cannot be read ({type(exc).__name__}: {exc})") from None
    if not isinstance(content, dict) or not isinstance(content.get("pipeline"), Pipeline):
        raise PayloadError("its payload holds no fitted pipeline")
    pipeline, rebuilt = content["pipeline"], content.get("rebuilt")
    if rebuilt is not None:
        if not isinstance(rebuilt, dict) or rebuilt.get("class") not in REBUILT:
            raise PayloadError(f"its payload rebuilds an estimator IAMAP does not know ({str(rebuilt)[:80]})")
        try:
            estimator = REBUILT[rebuilt["class"]][1](rebuilt["state"])
        except PayloadError:
            raise
        except Exception as exc:
            raise PayloadError(f"its {rebuilt['class']} cannot be rebuilt ({type(exc).__name__}: {exc})") from None
        pipeline.steps[-1] = (pipeline.steps[-1][0], estimator)
    return pipeline
