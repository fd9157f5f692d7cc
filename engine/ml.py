"""The ml tool: train a scikit-learn estimator on the pixels under labelled points or polygons, validate it
honestly, and map the whole raster with it, block by block.

1. Training pixels (:mod:`engine.labelled_samples`), labels coded (:mod:`engine.class_codes`).
2. The final model is fitted on all of them (scale -> estimator); saved to SAVE_MODEL with its classes, bands and
   validation figures. Fitted first, so that a bad SK_PARAM stops the run before the cross-validation.
3. Cross-validation (:mod:`engine.validation`) and, with TEMPLATE_TEST, the figures on the independent layer
   (:mod:`engine.ml_evaluation`: its pixels that are training pixels too are left out).
4. Prediction of every pixel (:mod:`engine.ml_prediction`): classes, and their probability for
   OUTPUT_CONFIDENCE; memory is the model and one strip, whatever the raster size.
5. The HTML report (:mod:`engine.ml_report`).
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.base import is_classifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from . import __version__
from .class_colours import check_colours, class_colours
from .class_codes import ClassCodes, regression_targets
from .contract import TOOLS
from .errors import ParameterError
from .estimator_registry import build_estimator, estimator_class, library_versions
from .estimator_run import check_estimator_parameters
from .events import WarningsKept
from .fitting import estimator_errors, ticking
from .legacy_runs import resave
from .labelled_samples import LabelledPixels, read_labelled_pixels
from .ml_evaluation import evaluate_on_layer
from .ml_prediction import predict_raster
from .ml_report import write_report
from .model_files import describe, load_model, save_model
from .parameters import parameter_class
from .polygons import check_polygons_path, every_value, tool_polygons
from .raster_writing import check_output, finalize
from .rasters import check_bands, extent_window, open_raster
from .validation import assign_folds, cross_validate, headline

#: Key figures returned as the algorithm's outputs, by task: output id -> metric.
KEY_FIGURES = {"classification": {"ACCURACY": "accuracy", "KAPPA": "kappa", "F1_MACRO": "f1_macro"},
               "regression": {"R2": "r2", "RMSE": "rmse", "MAE": "mae"}}
REPORT_SUFFIXES = (".html", ".htm")


class MlParams(parameter_class("ml")):
    """The ml tool's parameters (see ``engine.contract.ML``), checked before any work."""

    def check(self) -> None:
        check_estimator_parameters(self)
        if self.REPORT and Path(self.REPORT).suffix.lower() not in REPORT_SUFFIXES:
            raise ParameterError("REPORT", f"{Path(self.REPORT).name}: the report is an HTML page; give a file name "
                                           "ending in .html.")
        check_polygons_path(self.OUTPUT_POLYGONS)
        self.colours = read_class_colours(self.CLASS_COLOURS)
        if self.LOAD_MODEL:
            return
        if self.OUTPUT_POLYGONS and not is_classifier_method(self.METHOD):
            raise_polygons_of_regressor(self.METHOD)
        if not self.TEMPLATE:
            raise ParameterError("TEMPLATE", "give a layer of labelled points or polygons to train from, or a saved "
                                             "model to apply (LOAD_MODEL).")
        if not self.GT_COL:
            raise ParameterError("GT_COL", "choose the field of the training layer that holds the labels.")
        if self.CV == "column" and not self.FOLD_COL:
            raise ParameterError("FOLD_COL", "CV = column reads each feature's fold from a field: choose it, or "
                                             "another CV.")
        if self.CV == "column" and self.FOLD_COL == self.GT_COL:
            raise ParameterError("FOLD_COL", f"{self.FOLD_COL!r} is also the field with the labels (GT_COL, "
                                             f"\u201c{TOOLS['ml']['GT_COL'].label}\u201d): each fold would hold one "
                                             "class, and be validated by a model that never saw it. Choose a field "
                                             "that groups the features into folds (a region, a date), or another CV.")


def raise_polygons_of_regressor(method: str) -> None:
    """Refuse OUTPUT_POLYGONS of a regressor's map (a number per pixel, no classes)."""
    raise ParameterError("OUTPUT_POLYGONS", f"{method} is a regressor: its prediction is a number, not classes to make "
                                            "polygons of. Leave OUTPUT_POLYGONS empty, or choose a classifier.")


def read_class_colours(text: str) -> dict[str, str]:
    """CLASS_COLOURS (a JSON object of class name -> #rrggbb) as a dict; {} when empty."""
    if not text:
        return {}
    try:
        given = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParameterError("CLASS_COLOURS", f"is not valid JSON ({exc.msg} at character {exc.pos}); give an "
                                              'object such as {"water": "#1f78b4"}.') from None
    if not isinstance(given, dict):
        raise ParameterError("CLASS_COLOURS", 'must be a JSON object such as {"water": "#1f78b4"}.')
    return check_colours(given)


def resolve_colours(p: MlParams, meta: dict) -> None:
    """Set ``meta["class_colours"]`` (class name -> #rrggbb) of a classifier: CLASS_COLOURS, else the colours the
    model was saved with, else the conventional or palette colours (:mod:`engine.class_colours`)."""
    if not meta.get("classes"):
        return
    names = ClassCodes.from_dict(meta["classes"]).names
    meta["class_colours"] = dict(zip(names, class_colours(names, {**meta.get("class_colours", {}), **p.colours})))


def is_classifier_method(method: str) -> bool:
    """Whether METHOD ``method`` is a classifier (else a regressor)."""
    return bool(is_classifier(estimator_class("ml", method)()))


def make_pipeline(p: MlParams):
    """Scale -> the unfitted estimator of METHOD with SK_PARAM (random_state from RANDOM_SEED where taken)."""
    return Pipeline([("scale", StandardScaler()), ("estimator", build_estimator("ml", p.METHOD, p.SK_PARAM, 0,
                                                                                p.RANDOM_SEED))])


def run_ml(params: dict, reporter) -> dict:
    """The ml tool: train (or load) the estimator, validate it, map the raster, write the report.

    Returns the outputs sent in the worker's ``result`` event."""
    reporter = WarningsKept(reporter)  # the report lists them
    p = MlParams.from_dict(params)
    output = check_output(p.OUTPUT)
    confidence = check_output(p.OUTPUT_CONFIDENCE, "OUTPUT_CONFIDENCE") if p.OUTPUT_CONFIDENCE else None
    with open_raster(p.INPUT) as src:
        bands = check_bands(src, p.BANDS)
        window = extent_window(src, p.EXTENT)
        band_names = [src.descriptions[b - 1] or f"band {b}" for b in bands]
        if p.LOAD_MODEL:
            model, report = loaded_model(p, bands, band_names, reporter)
            training, start = None, 10
        else:
            model, report, training = train(p, src, bands, band_names, window, reporter.stage(0, 40))
            start = 45
        meta = model["metadata"]
        classes = ClassCodes.from_dict(meta["classes"]) if meta["task"] == "classification" else None
        if classes is None and p.OUTPUT_POLYGONS:  # a loaded regressor
            raise_polygons_of_regressor(meta["method"])
        if p.TEMPLATE_TEST:
            report["test"] = evaluate_on_layer(p, model, classes, src, bands, window, training,
                                               reporter.stage(start - 5, start))
        started = time.monotonic()
        partials, mapped = predict_raster(p, model, classes, src, bands, window, output, confidence,
                                          reporter.stage(start, 100))
        seconds = time.monotonic() - started
        reporter.text(f"Prediction of {window.width} x {window.height} pixels: done in {seconds:.1f} s "
                      f"({window.width * window.height / max(seconds, 1e-9):,.0f} pixels/s).")
    report["prediction"] = mapped
    report["warnings"] += reporter.warnings
    outputs = {"OUTPUT": str(output), "METHOD": meta["method"], "TASK": meta["task"], **key_figures(report)}
    if classes is not None:
        outputs["CLASSES"] = dict(zip(classes.names, classes.codes))
        outputs["CLASS_PIXELS"] = mapped["class_pixels"]
        outputs["CLASS_COLOURS"] = meta["class_colours"]
    else:
        outputs["DISPLAY_RANGE"] = mapped["display_range"]
    record = {"tool": "ml", "iamap_version": __version__, "parameters": params, "model": meta, "outputs": outputs}
    finalize(partials[0], output, record)
    if confidence is not None:
        finalize(partials[1], confidence, record, "OUTPUT_CONFIDENCE")
        outputs["OUTPUT_CONFIDENCE"] = str(confidence)
    if p.SAVE_MODEL:
        outputs["SAVE_MODEL"] = p.SAVE_MODEL
    if p.OUTPUT_POLYGONS:
        polygons = tool_polygons(p, params, output, every_value(), dict(zip(classes.codes, classes.names)),
                                 reporter.stage(100, 100))
        outputs.update(OUTPUT_POLYGONS=polygons["OUTPUT_POLYGONS"], POLYGONS=polygons["POLYGONS"])
    if p.REPORT:
        outputs["REPORT"] = str(write_report(p.REPORT, report))
        reporter.text(f"Report: {outputs['REPORT']}")
    return outputs


def train(p: MlParams, src, bands: list[int], band_names: list[str], window, reporter):
    """Read the training pixels, fit the final model, cross-validate; returns (model, report, training pixels)."""
    classification = is_classifier_method(p.METHOD)
    sample = read_labelled_pixels(p.TEMPLATE, src, bands, window, p.GT_COL, p.SAMPLE_PER_POLYGON, p.RANDOM_SEED,
                                  p.FOLD_COL if p.CV == "column" else "", reporter=reporter.stage(0, 10),
                                  name=p.shown("TEMPLATE"))
    if classification:
        classes = ClassCodes.from_labels(sample.labels, p.METHOD)
        if len(classes.codes) < 2:
            raise ParameterError("GT_COL", f"every training pixel has the class {classes.names[0]!r}: a classifier "
                                           "needs at least 2 classes.")
        targets = classes.encode(sample.labels)
    else:
        classes, targets = None, regression_targets(sample.labels, p.METHOD)
    pipeline = make_pipeline(p)
    with ticking(reporter, f"Fitting {p.METHOD} on {len(targets)} training pixels"), \
            estimator_errors("ml", p.METHOD), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pipeline.fit(sample.values, targets)
    for message in dict.fromkeys(str(w.message) for w in caught):  # not converged, and the like: the user decides
        reporter.warning(f"{p.METHOD}: {message}")
    reporter.progress(25)
    validation = None
    if p.CV != "none":
        folds, description = assign_folds(p.CV, p.NFOLDS, sample, targets, classes, p.RANDOM_SEED, p.FOLD_COL,
                                          reporter)
        with ticking(reporter, f"Cross-validation: {description}"):
            validation = {"cv": p.CV, "description": description,
                          **cross_validate(lambda: make_pipeline(p), sample.values, targets, folds, classes, sample,
                                           reporter.stage(25, 100))}
        reporter.text(f"Cross-validation, pooled over the folds: {headline(validation['overall'])}.")
    else:
        reporter.warning("CV = none: the model is not cross-validated" + (
            "; the test layer (TEMPLATE_TEST) gives its figures." if p.TEMPLATE_TEST else
            ", and without a test layer (TEMPLATE_TEST) nothing tells how good it is."))
    estimator = pipeline[-1]
    meta = {
        "apply": "predict", "tool": "ml", "method": p.METHOD, "task": "classification" if classes else "regression",
        "classes": classes.as_dict() if classes else None, "bands": bands, "band_count": len(bands),
        "band_names": band_names, "input": p.INPUT, "label_field": p.GT_COL, "training_layer": p.TEMPLATE,
        "training_layer_label": p.shown("TEMPLATE"),
        "fitted_pixels": len(targets), "training_features": sample.features_used,
        "versions": library_versions(p.METHOD), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "parameters": {"SK_PARAM": p.SK_PARAM, "CV": p.CV, "NFOLDS": p.NFOLDS, "SAMPLE_PER_POLYGON":
                       p.SAMPLE_PER_POLYGON, "RANDOM_SEED": p.RANDOM_SEED},
        "estimator_parameters": {k: repr(v) for k, v in estimator.get_params(deep=False).items()},
        "validation": {"description": validation["description"], "overall": validation["overall"]}
        if validation else None,
    }
    resolve_colours(p, meta)
    model = {"pipeline": pipeline, "estimator": estimator, "metadata": meta}
    if p.SAVE_MODEL:
        saved = save_model(model, p.SAVE_MODEL, reporter)
        reporter.text(f"Model saved to {saved}; LOAD_MODEL applies it to other rasters without training.")
    report = base_report(p, meta, band_names, "trained")
    report["training"] = training_summary(p.shown("TEMPLATE"), p.GT_COL, sample, targets, classes)
    if validation:
        report["validation"] = validation
    importances = feature_importances(estimator, band_names)
    if importances:
        report["importances"] = importances
    return model, report, sample


def loaded_model(p: MlParams, bands: list[int], band_names: list[str], reporter):
    """LOAD_MODEL, checked against the selected bands; returns (model, report)."""
    model = resave(load_model(p.LOAD_MODEL, "ml", len(bands), trust=p.TRUST_MODEL, reporter=reporter), p.SAVE_MODEL,
                   bands, reporter)  # an IAMAP 1.0.2 .pkl (TRUST_MODEL) re-saved as a model file
    meta = model["metadata"]
    reporter.text(f"Applying the saved model: {describe(model)}; its estimator, classes and parameters are used "
                  "as saved.")
    saved_names = meta.get("band_names") or []
    if saved_names and saved_names != band_names and not all(n.startswith("band ") for n in saved_names + band_names):
        reporter.warning(f"BANDS: the model was trained on bands named {', '.join(saved_names)}; the selected bands "
                         f"are named {', '.join(band_names)}. Check that they hold the same features in the same "
                         "order.")
    if p.TEMPLATE:
        reporter.warning("TEMPLATE is not used with LOAD_MODEL (the saved model is applied as it is); give the "
                         "layer as TEMPLATE_TEST to evaluate the model on it.")
    resolve_colours(p, meta)
    report = base_report(p, meta, band_names, "loaded")
    report["model_file"] = p.LOAD_MODEL
    if meta.get("validation"):
        report["warnings"].append(f"Validation when the model was trained ({meta['validation']['description']}): "
                                  f"{headline(meta['validation']['overall'])}.")
    return model, report


def base_report(p: MlParams, meta: dict, band_names: list[str], source: str) -> dict:
    """The report's common part: title, task, method, input, bands and every parameter."""
    classes = ClassCodes.from_dict(meta["classes"]) if meta.get("classes") else None
    return {
        "title": f"{meta['method']} on {Path(p.INPUT).name}", "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "iamap_version": __version__, "task": meta["task"], "method": meta["method"], "input": p.INPUT,
        "bands": meta["bands"], "band_names": band_names,
        "parameters": p.shown_values(),
        "estimator_parameters": meta.get("estimator_parameters", {}), "model_source": source,
        "classes": [{"code": code, "name": name, "colour": meta["class_colours"][name]}
                    for code, name in zip(classes.codes, classes.names)] if classes else [],
        "warnings": [], "versions": meta.get("versions", {}),
    }


def training_summary(layer: str, field: str, sample: LabelledPixels, targets: np.ndarray,
                     classes: ClassCodes | None) -> dict:
    """What the training data held: features and pixels used, dropped, and counts per class (or the targets' range)."""
    summary = {"layer": layer, "label_field": field, "features_used": sample.features_used,
               "pixels": int(len(targets)), "dropped": sample.dropped}
    if classes is None:
        summary["target_summary"] = {"min": float(targets.min()), "max": float(targets.max()),
                                     "mean": float(targets.mean()), "std": float(targets.std())}
    else:
        summary["class_counts"] = {name: {"features": int(np.unique(sample.features[targets == code]).size),
                                          "pixels": int((targets == code).sum())}
                                   for code, name in zip(classes.codes, classes.names)}
    return summary


def feature_importances(estimator, band_names: list[str]) -> dict | None:
    """Impurity importances of tree ensembles, or the mean absolute coefficient of linear models (on standardised
    bands, so comparable between bands); None for estimators that have neither."""
    if hasattr(estimator, "feature_importances_"):
        values, kind = np.asarray(estimator.feature_importances_), "impurity decrease (feature_importances_)"
    elif hasattr(estimator, "coef_") and np.ndim(estimator.coef_) in (1, 2):
        values = np.abs(np.atleast_2d(estimator.coef_)).mean(axis=0)
        kind = "mean |coefficient| on standardised bands"
    else:
        return None
    if len(values) != len(band_names):
        return None
    return {"kind": kind, "values": {name: float(v) for name, v in zip(band_names, values)}}


def key_figures(report: dict) -> dict:
    """The outputs ACCURACY, KAPPA, F1_MACRO (or R2, RMSE, MAE) and VALIDATED_ON: from the independent test layer
    when there is one, else from the cross-validation."""
    figures = KEY_FIGURES[report["task"]]
    if "test" in report:
        test = report["test"]
        metrics, source = test["metrics"], f"independent test layer {test['layer']}"
        if not test["independence"].startswith("Independent"):
            source += f" ({test['independence'].rstrip('.')})"
    elif "validation" in report:
        metrics, source = report["validation"]["overall"], f"cross-validation: {report['validation']['description']}"
    else:
        return {"VALIDATED_ON": "not validated"}
    return {"VALIDATED_ON": source, **{name: metrics[key] for name, key in figures.items()
                                       if metrics.get(key) is not None}}
