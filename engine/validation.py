"""Honest validation of iamap:ml: the folds of each ``CV`` method, the cross-validation itself, and the metrics.

Pixels of one feature are correlated (a polygon's pixels look alike), so a split over pixels tests the model on
pixels it has nearly seen. ``group`` (the default) keeps every feature's pixels in one fold, ``spatial`` every
block of the training area, ``column`` follows a field; ``kfold`` and ``stratified`` split pixels and the log
says they are optimistic when a feature gives several pixels. The overall figures are those of the pooled
out-of-fold predictions; the model the tool applies is fitted afterwards on all the training pixels.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from .class_codes import ClassCodes
from .errors import ParameterError
from .events import NULL_REPORTER
from .labelled_samples import LabelledPixels

#: What each CV method does, for the log and the report ({k}: the number of folds).
CV_DESCRIPTIONS = {
    "group": "{k}-fold by feature (a polygon's pixels stay in one fold)",
    "spatial": "{k}-fold by spatial block ({blocks} blocks of {side:.4g} map units)",
    "stratified": "{k}-fold over pixels, stratified by class",
    "kfold": "{k}-fold over pixels",
    "column": "{k} folds from the field {field}",
}
#: Blocks per fold of ``spatial``: enough blocks that every fold gets several, each block still large.
BLOCKS_PER_FOLD = 4


def assign_folds(cv: str, nfolds: int, sample: LabelledPixels, targets: np.ndarray, classes: ClassCodes | None,
                 seed: int, fold_field: str = "", reporter=NULL_REPORTER) -> tuple[np.ndarray, str]:
    """The fold (0, 1, ...) of each pixel of ``sample`` under ``cv``, and a description of the split.

    ``classes`` is None for a regressor. Impossible splits are errors naming the parameter to change.
    """
    # deferred: scikit-learn (about a second) loads when a model is fitted or applied, after the parameter checks
    from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold

    n = len(targets)
    details = {"k": nfolds, "field": fold_field}
    if cv == "column":
        values = sample.folds.astype(str)
        missing = np.array([v.strip() in ("", "None", "nan", "NaN") for v in values])
        if missing.any():
            raise ParameterError("FOLD_COL", f"{int(np.unique(sample.features[missing]).size)} training feature(s) "
                                             f"have no value in {fold_field!r}; give every feature a fold.")
        names, folds = np.unique(values, return_inverse=True)
        if len(names) < 2:
            raise ParameterError("FOLD_COL", f"{fold_field!r} holds a single value ({names[0]!r}): at least 2 folds "
                                             "are needed.")
        details["k"] = len(names)
        if classes is not None:
            _check_classes_span_folds(targets, folds, classes, fold_field, reporter)
        reporter.text(f"Folds from {fold_field}: " + ", ".join(f"{name} ({int((folds == i).sum())} pixels)"
                                                               for i, name in enumerate(names)) + ".")
        return folds.astype(np.int64), CV_DESCRIPTIONS["column"].format(**details)
    if cv == "stratified" and classes is None:
        raise ParameterError("CV", "stratified needs classes and the estimator is a regressor: use group, spatial or "
                                   "kfold.")
    if cv == "stratified":
        codes, counts = np.unique(targets, return_counts=True)
        if counts.min() < nfolds:
            name = classes.name_of(codes[counts.argmin()])
            raise ParameterError("NFOLDS", f"class {name!r} has {counts.min()} labelled pixel(s), fewer than the "
                                           f"{nfolds} folds of a stratified cross-validation: lower NFOLDS to "
                                           f"{max(2, counts.min())}, label more of {name!r}, or use CV = group.")
        splitter, groups = StratifiedKFold(nfolds, shuffle=True, random_state=seed), None
    elif cv == "kfold":
        if n < nfolds:
            raise ParameterError("NFOLDS", f"{n} labelled pixel(s) cannot be split into {nfolds} folds.")
        splitter, groups = KFold(nfolds, shuffle=True, random_state=seed), None
    else:  # group or spatial: folds of whole groups
        if cv == "spatial":
            blocks, side = spatial_blocks(sample.feature_xy, nfolds)
            groups = blocks[sample.features]
            details.update(blocks=int(np.unique(groups).size), side=side)
            what = f"spatial block(s) hold training features (blocks of {side:.4g} map units)"
        else:
            groups = sample.features
            what = "labelled feature(s)"
        count = int(np.unique(groups).size)
        if count < nfolds:
            raise ParameterError("NFOLDS", f"only {count} {what}, fewer than the {nfolds} folds: lower NFOLDS to "
                                           f"{max(2, count)} or less, or add training features." if count >= 2 else
                                 f"only {count} {what}: a {cv} cross-validation needs at least 2; add training "
                                 "features, or choose another CV.")
        splitter = (StratifiedGroupKFold if classes is not None else GroupKFold)(nfolds, shuffle=True,
                                                                                 random_state=seed)
    folds = np.full(n, -1, np.int64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for k, (_, test) in enumerate(splitter.split(np.zeros((n, 1)), targets, groups)):
            folds[test] = k
    for warning in caught:  # the least populated class has fewer groups than folds, and the like
        reporter.warning(f"CV {cv}: {warning.message}")
    if cv in ("kfold", "stratified") and np.unique(sample.features).size < n:
        reporter.warning(f"CV {cv} splits pixels: the pixels of one polygon fall in training and validation folds, "
                         "so the figures are optimistic. CV = group keeps each feature in one fold.")
    return folds, CV_DESCRIPTIONS[cv].format(**details)


def _check_classes_span_folds(targets: np.ndarray, folds: np.ndarray, classes: ClassCodes, fold_field: str,
                              reporter) -> None:
    """Say which classes lie in a single fold of FOLD_COL (validated by a model that never saw them); refuse
    folds that each hold their own classes (a field that follows the labels)."""
    single = [(classes.name_of(code), int(np.unique(folds[targets == code])[0])) for code in np.unique(targets)
              if np.unique(folds[targets == code]).size == 1]
    if len(single) == np.unique(targets).size:
        raise ParameterError("FOLD_COL", f"every class lies in a single fold of {fold_field!r}, so each fold would "
                                         "be validated by a model that never saw its classes (accuracy 0 whatever "
                                         "the model). The field follows the labels (GT_COL): choose a field that "
                                         "groups the features into folds (a region, a date), or another CV.")
    if single:
        reporter.warning(f"FOLD_COL: class(es) {', '.join(repr(name) for name, _ in single)} lie in a single fold of "
                         f"{fold_field!r}: when that fold is validated, the model has never seen them, and they count "
                         "as errors.")


def spatial_blocks(feature_xy: np.ndarray, nfolds: int) -> tuple[np.ndarray, float]:
    """The square block of each feature (by its point) on a grid over the features, of about
    ``BLOCKS_PER_FOLD * nfolds`` blocks; returns (block id per feature, block side)."""
    low, high = feature_xy.min(axis=0), feature_xy.max(axis=0)
    extent = float((high - low).max())
    cells = math.ceil(math.sqrt(BLOCKS_PER_FOLD * nfolds))
    side = extent / cells if extent > 0 else 1.0
    cell = np.minimum(((feature_xy - low) / side).astype(np.int64), cells - 1)
    return cell[:, 1] * cells + cell[:, 0], side


def cross_validate(make_pipeline, values: np.ndarray, targets: np.ndarray, folds: np.ndarray,
                   classes: ClassCodes | None, sample: LabelledPixels, reporter=NULL_REPORTER) -> dict:
    """Fit ``make_pipeline()`` on all folds but one and predict that one, for every fold.

    Returns per-fold metrics, the metrics of the pooled out-of-fold predictions (``overall``) and, for a
    regressor, the observed and predicted values.
    """
    predicted = np.empty_like(targets)
    fold_rows = []
    count = int(folds.max()) + 1
    for k in range(count):
        test = folds == k
        train = ~test
        pipeline = make_pipeline()
        try:
            pipeline.fit(values[train], targets[train])
        except ValueError as exc:
            raise ParameterError("CV", f"fold {k + 1} of {count} could not be fitted ({exc}). With few training "
                                       "features choose fewer folds (NFOLDS) or another CV.") from None
        predicted[test] = pipeline.predict(values[test])
        metrics = score(targets[test], predicted[test], classes)
        fold_rows.append({"fold": k + 1, "train_pixels": int(train.sum()), "test_pixels": int(test.sum()),
                          "test_features": int(np.unique(sample.features[test]).size), "metrics": metrics})
        reporter.text(f"Fold {k + 1}/{count}: {headline(metrics)} on {int(test.sum())} pixel(s).")
        reporter.progress(100 * (k + 1) / count)
    result = {"folds_count": count, "folds": fold_rows, "overall": score(targets, predicted, classes)}
    if classes is None:
        result.update(observed=targets.tolist(), predicted=predicted.tolist())
    return result


def score(observed: np.ndarray, predicted: np.ndarray, classes: ClassCodes | None) -> dict:
    """Classification metrics when ``classes`` is given, else regression metrics."""
    return regression_metrics(observed, predicted) if classes is None else \
        classification_metrics(observed, predicted, classes)


def _figure(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def classification_metrics(observed: np.ndarray, predicted: np.ndarray, classes: ClassCodes) -> dict:
    """Overall accuracy, Cohen's kappa, macro and weighted F1, per-class precision/recall/F1/support and the
    confusion matrix (rows observed, columns predicted, in the order of ``classes``)."""
    # deferred: scikit-learn (about a second) loads when a model is fitted or applied, after the parameter checks
    from sklearn.metrics import (accuracy_score, cohen_kappa_score, confusion_matrix, f1_score,
                                 precision_recall_fscore_support)

    codes = list(classes.codes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kappa of a single class, F1 of a class never predicted: None below
        precision, recall, f1, support = precision_recall_fscore_support(observed, predicted, labels=codes,
                                                                         zero_division=np.nan)
        kappa = cohen_kappa_score(observed, predicted)
        return {
            "pixels": int(len(observed)), "accuracy": _figure(accuracy_score(observed, predicted)),
            "kappa": _figure(kappa),
            "f1_macro": _figure(f1_score(observed, predicted, average="macro", zero_division=0)),
            "f1_weighted": _figure(f1_score(observed, predicted, average="weighted", zero_division=0)),
            "per_class": [{"name": name, "code": code, "precision": _figure(p), "recall": _figure(r),
                           "f1": _figure(f), "support": int(s)}
                          for name, code, p, r, f, s in zip(classes.names, codes, precision, recall, f1, support)],
            "labels": list(classes.names),
            "confusion": confusion_matrix(observed, predicted, labels=codes).tolist(),
        }


def regression_metrics(observed: np.ndarray, predicted: np.ndarray) -> dict:
    """R², root mean squared error and mean absolute error."""
    # deferred: scikit-learn (about a second) loads when a model is fitted or applied, after the parameter checks
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # R² of fewer than 2 pixels is undefined: None
        r2 = r2_score(observed, predicted) if len(observed) > 1 else float("nan")
    return {"pixels": int(len(observed)), "r2": _figure(r2),
            "rmse": _figure(math.sqrt(mean_squared_error(observed, predicted))),
            "mae": _figure(mean_absolute_error(observed, predicted))}


def headline(metrics: dict) -> str:
    """The key figures of ``metrics`` in a few words, for the log."""
    def text(value, fmt=".3f"):
        return "n/a" if value is None else format(value, fmt)

    if "accuracy" in metrics:
        return (f"accuracy {text(metrics['accuracy'])}, kappa {text(metrics['kappa'])}, macro F1 "
                f"{text(metrics['f1_macro'])}")
    return f"R\u00b2 {text(metrics['r2'])}, RMSE {text(metrics['rmse'], '.4g')}, MAE {text(metrics['mae'], '.4g')}"
