"""IAMAP 1.0.2's ``.pkl`` models, loaded only under TRUST_MODEL and applied as 1.0.2 applied them.

IAMAP 1.0.2 saved a model as a joblib pickle of the bare fitted scikit-learn estimator, nothing around it. What
1.0.2 did with that estimator (read from its utils/algo.py and ml.py):

- reduction and cluster: on every run, a StandardScaler fitted on every pixel of the processed extent of the
  raster at hand (the selected bands; before SUBSET drew its sample), then the estimator's ``transform``
  (reduction, written float32) or ``predict`` (cluster, labels written uint8) on the scaled pixels;
- ml: no scaling (trained and predicted on the raw band values); the labels were replaced by integer codes
  before fitting (pandas.factorize: 0, 1, 2... in order of first appearance in the training layer), so
  ``classes_`` holds those codes, which the class raster held (int8); a regressor predicted the field itself.

:func:`wrap` builds today's model dict around such an estimator (tool, band count and, for ml, classes from ``classes_``
checked); for reduction and cluster :func:`engine.legacy_runs.complete` fits that scaler on the raster being processed
and computes the figures on the seeded pixel sample (:mod:`engine.sampling`). Not reproduced: 1.0.2 also counted nodata
pixels in the scaler and applied the model to them; here they are left out and written as nodata.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .class_codes import ClassCodes, whole_numbers
from .contract import label
from .errors import ParameterError
from .estimator_registry import library_versions
from .events import NULL_REPORTER

#: The key of a model dict wrapped around a 1.0.2 estimator (not saved: a re-saved model is an ordinary one).
LEGACY_KEY = "iamap_1_0_2"
#: What the tools call on the estimator, by tool (as 1.0.2 did).
APPLY = {"reduction": "transform", "cluster": "predict", "ml": "predict"}


def is_estimator(obj) -> bool:
    """A scikit-learn estimator or pipeline (umap-learn's UMAP is one too): what 1.0.2 pickled."""
    # deferred: scikit-learn (about a second) loads when a model is fitted or applied, after the parameter checks
    from sklearn.base import BaseEstimator

    return isinstance(obj, BaseEstimator)


def estimator_tool(estimator) -> str | None:
    """The IAMAP tool an estimator belongs to: ml (classifier, regressor), cluster, reduction (transform)."""
    # deferred: scikit-learn (about a second) loads when a model is fitted or applied, after the parameter checks
    from sklearn.base import ClusterMixin, is_classifier, is_regressor
    from sklearn.pipeline import Pipeline

    final = estimator[-1] if isinstance(estimator, Pipeline) else estimator
    if is_classifier(estimator) or is_regressor(estimator):
        return "ml"
    if isinstance(final, ClusterMixin):
        return "cluster"
    return "reduction" if hasattr(estimator, "transform") else None


def wrap(estimator, source: Path, digest: str, tool: str, band_count: int, reporter=NULL_REPORTER) -> dict:
    """The model dict of :mod:`engine.fitting` around 1.0.2's bare ``estimator``, loaded from ``source``."""
    # deferred: scikit-learn (about a second) loads when a model is fitted or applied, after the parameter checks
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    name = type(estimator).__name__
    what = f"{source.name} holds IAMAP 1.0.2's bare {name}"
    kind = estimator_tool(estimator)
    if kind != tool:
        raise ParameterError("LOAD_MODEL", f"{what}, " + (f"a {kind} model: load it in iamap:{kind}, not "
                                                         f"iamap:{tool}." if kind else
                                                         "which neither maps nor labels pixels."))
    if not hasattr(estimator, APPLY[tool]):
        raise ParameterError("LOAD_MODEL", f"{what}, which has no {APPLY[tool]} method: 1.0.2 fitted it on one "
                                           f"raster and could not apply it to another either. Fit the model "
                                           f"again (leave LOAD_MODEL empty).")
    expected = getattr(estimator, "n_features_in_", None)
    if expected is None:
        raise ParameterError("LOAD_MODEL", f"{what}, which is not fitted (no n_features_in_). Fit the model again "
                                           f"(leave LOAD_MODEL empty).")
    if int(expected) != band_count:
        raise ParameterError("LOAD_MODEL", f"{what}, fitted on {expected} band(s); the selected input has "
                                           f"{band_count}. Select the {expected} bands it was fitted on "
                                           f"({label(tool, 'BANDS')}), or fit a new model.")
    meta = {"apply": APPLY[tool], "tool": tool, "method": name, "bands": None, "band_count": band_count,
            "input": str(source), "fitted_pixels": None, "versions": library_versions(name),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "parameters": {},
            "estimator_parameters": {k: repr(v) for k, v in estimator.get_params(deep=False).items()},
            "source": {"format": "IAMAP 1.0.2 .pkl (a pickle of the bare estimator)", "file": str(source),
                       "sha256": digest}}
    if tool == "ml":
        steps = [("estimator", estimator)]
        how = f"on the raw band values, as 1.0.2 trained it (its ml tool did not scale them): {name}.predict"
        meta.update(ml_metadata(estimator, what))
        if meta["classes"]:
            how += (f"; classes {', '.join(meta['classes']['names'])}: 1.0.2's codes (0, 1, 2... in order of first "
                    f"appearance in its training layer; the used.shp it wrote beside its output has each code "
                    f"beside its label), written as they are")
    else:
        steps = [("scale", StandardScaler()), ("estimator", estimator)]
        how = (f"a StandardScaler fitted on every valid pixel of the selected bands in this raster's extent, as "
               f"1.0.2 refitted it on each raster it processed, then {name}.{APPLY[tool]} on the scaled pixels")
    reporter.warning(f"TRUST_MODEL: trusted {source.resolve()} (sha256 {digest}): a pickle of IAMAP 1.0.2's bare "
                     f"{name}. Applied as 1.0.2 applied it: {how}.")
    return {"pipeline": Pipeline(steps), "estimator": estimator, "metadata": meta, LEGACY_KEY: True}


def ml_metadata(estimator, what: str) -> dict:
    """Task and classes of a 1.0.2 ml estimator: its ``classes_`` are the codes 1.0.2 gave the labels."""
    # deferred: scikit-learn (about a second) loads when a model is fitted or applied, after the parameter checks
    from sklearn.base import is_classifier

    if not is_classifier(estimator):
        return {"task": "regression", "classes": None}
    classes = np.asarray(getattr(estimator, "classes_", []))
    if classes.ndim != 1 or len(classes) < 2 or whole_numbers(classes) is None:
        raise ParameterError("LOAD_MODEL", f"{what}, whose classes ({', '.join(map(str, classes.ravel()[:8]))}) "
                                           f"are not the whole-number class codes 1.0.2 stored, so they cannot be "
                                           f"written as a class raster. Fit the model again (leave LOAD_MODEL "
                                           f"empty).")
    return {"task": "classification", "classes": ClassCodes.from_labels(classes, type(estimator).__name__,
                                                                        "LOAD_MODEL").as_dict()}
