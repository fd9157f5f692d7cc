"""``iamap:ml``: supervised classification or regression of pixel vectors from labelled points or polygons
(random forest and the other scikit-learn estimators), validated, and applied to every pixel."""

from __future__ import annotations

import json

from .engine import catalog, contract
from .utils.algorithm import IamapAlgorithm
from .utils.loading import load_styled, polygon_results
from .utils.styles import categorized_colours, raster_classes, style_continuous, style_paletted


class MlAlgorithm(IamapAlgorithm):
    """``iamap:ml``: classification or regression from labelled data (engine: :mod:`engine.ml`)."""

    TOOL = contract.ML
    DISPLAY_NAME = "Classify from labelled data"
    ICON = "ml"
    SHORT_DESCRIPTION = ("Supervised classification or regression from labelled points or polygons, cross-validated, "
                         "with an HTML report")
    TAGS = ("ml", "machine learning", "supervised", "classification", "classify", "regression", "random forest",
            "randomforest", "knn", "svm", "mlp", "land cover", "training", "cross-validation", "accuracy",
            "scikit-learn")
    HELP = f"""
<p>Trains a scikit-learn estimator on the pixels under labelled points or polygons (typically on the
features of iamap:encoder, or their reduction; raw bands work too), validates it and maps every pixel, block
by block, so memory does not grow with the raster. A classifier gives a class raster, opened with one colour
and the class name per class (text labels are coded 1, 2, 3... in alphabetical order; whole-number labels keep
their value); a regressor gives a float32 raster of the predicted number.</p>
<p>A point gives the pixel under it, a polygon the pixels whose centre it holds (at most SAMPLE_PER_POLYGON,
drawn at random), a line the pixels it crosses. Features outside the raster or on nodata are left out and
counted in the log.</p>
<p>Validation is honest by default: CV = group keeps each polygon's pixels in one fold, CV = spatial each
block of the training area; the figures are those of the pooled out-of-fold predictions, and the model applied
to the raster is then fitted on all the training data. With TEMPLATE_TEST the model is also evaluated on an
independent layer, whose figures become the outputs ACCURACY, KAPPA and F1_MACRO (R2, RMSE and MAE for a
regressor). The HTML report holds the metrics, the confusion matrix (or predicted against observed values),
the feature importances and every parameter.</p>
<p>Estimators: {', '.join(catalog.ML_METHODS)}.</p>"""

    @staticmethod
    def add_layer_colours(params: dict, layer, feedback) -> None:
        """The colours of the training layer's categorized style as CLASS_COLOURS, under those given there (a
        CLASS_COLOURS that is not JSON is left for the engine to name)."""
        styled = categorized_colours(layer, params["GT_COL"])
        try:
            given = json.loads(params["CLASS_COLOURS"] or "{}")
        except ValueError:
            return
        if styled and isinstance(given, dict):
            params["CLASS_COLOURS"] = json.dumps({**styled, **given})
            feedback.pushInfo(f"Class colours from the categorized style of {layer.name()}.")

    def process(self, parameters, context, feedback):
        params = self.engine_parameters(parameters, context, feedback)
        if params.get("TEMPLATE") and not params.get("LOAD_MODEL"):
            self.add_layer_colours(params, self.parameterAsVectorLayer(parameters, "TEMPLATE", context), feedback)
        outputs = self.run_engine(params, feedback)
        name = f"{self.input_name(parameters, context)} {outputs['METHOD']}"
        result = {"OUTPUT": outputs["OUTPUT"]}
        if outputs.get("CLASSES"):
            names, codes = zip(*sorted(outputs["CLASSES"].items(), key=lambda item: item[1]))
            style_paletted(outputs["OUTPUT"], list(codes), names=list(names),
                           colours=[outputs["CLASS_COLOURS"][n] for n in names])
            result["CLASSES"] = json.dumps(outputs["CLASSES"])
            load_styled(context, outputs["OUTPUT"], f"{name} classes")
            result.update(polygon_results(context, outputs, raster_classes(outputs["OUTPUT"]), f"{name} polygons"))
        else:
            if outputs.get("DISPLAY_RANGE"):
                style_continuous(outputs["OUTPUT"], *outputs["DISPLAY_RANGE"])
            load_styled(context, outputs["OUTPUT"], f"{name} prediction")
        if outputs.get("OUTPUT_CONFIDENCE"):
            style_continuous(outputs["OUTPUT_CONFIDENCE"], 0.0, 1.0, "Magma")
            load_styled(context, outputs["OUTPUT_CONFIDENCE"], f"{name} confidence")
            result["OUTPUT_CONFIDENCE"] = outputs["OUTPUT_CONFIDENCE"]
        for key in ("SAVE_MODEL", "REPORT", "VALIDATED_ON"):
            if outputs.get(key):
                result[key] = outputs[key]
        figures = {key: outputs[key] for key in ("ACCURACY", "KAPPA", "F1_MACRO", "R2", "RMSE", "MAE")
                   if outputs.get(key) is not None}
        result.update(figures)
        if figures:
            feedback.pushInfo(f"Validated on {outputs['VALIDATED_ON']}: "
                              + ", ".join(f"{key} {value:.3f}" for key, value in figures.items()) + ".")
        else:
            feedback.pushWarning("The model is not validated (CV = none and no TEMPLATE_TEST).")
        return result
