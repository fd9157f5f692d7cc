"""ml: supervised estimators trained from labelled vectors."""

from __future__ import annotations

from .. import catalog
from .schema import Kind, Output, Parameter, Tool
from .shared import (MODEL_FILTER, MODEL_SUFFIX, SEED_MAXIMUM, advanced, bands, extent, input_raster,
                     polygon_parameters, scheduler, trust_model)

ML = Tool("ml", (
    input_raster("Raster whose pixel vectors are classified or mapped: a feature raster from iamap:encoder (or its "
           "reduction), or any raster (raw bands too)."),
    bands(),
    extent("Only predict this area (any CRS); training features outside it are dropped. Default: the whole "
            "raster."),
    Parameter("TEMPLATE", "Training data (labelled points or polygons)", Kind.VECTOR, "", optional=True,
              help="Labelled points or polygons, any CRS, any source QGIS reads (memory layers and selections "
                   "included). A point gives the pixel under it, a polygon the pixels whose centre it holds (at "
                   "most SAMPLE_PER_POLYGON, drawn at random), a line the pixels it crosses. Not needed with "
                   "LOAD_MODEL."),
    Parameter("GT_COL", "Field with the labels", Kind.FIELD, "", optional=True, parent="TEMPLATE",
              help="Field of the training layer holding the labels: class names or codes (text or whole numbers) "
                   "for a classifier, numbers for a regressor. Features without a label are left out (the log "
                   "counts them), and so are the pixels under features of different labels (overlapping polygons "
                   "that disagree)."),
    Parameter("TEMPLATE_TEST", "Independent test data", Kind.VECTOR, "", optional=True,
              help="Labelled points or polygons never used for training, with the same label field: the final "
                   "model is evaluated on them, and these figures are the tool's outputs. Its pixels that are "
                   "training pixels too (under a feature of the training layer) are left out, and the log and the "
                   "report count them; a test layer with no other pixel (the training layer itself) is refused. "
                   "With LOAD_MODEL: evaluates the saved model (checked against its training layer while that file "
                   "exists)."),
    Parameter("METHOD", "Estimator", Kind.ENUM, catalog.ML_METHODS[0], choices=catalog.ML_METHODS,
              help="scikit-learn estimator: random forest (default) and the other ensembles, nearest neighbours, "
                   "linear, SVM, naive Bayes and MLP models. A *Classifier (and NearestCentroid, LogisticRegression, "
                   "SVC, LinearSVC, GaussianNB, LinearDiscriminantAnalysis) maps classes; a *Regressor (and "
                   "LinearRegression, Ridge, Lasso, ElasticNet, SVR, LinearSVR) maps a number."),
    Parameter("CV", "Cross-validation", Kind.ENUM, catalog.CV_METHODS[0], choices=catalog.CV_METHODS,
              help="How the training data is split to validate the model (the final model is then fitted on all of "
                   "it): group (default): k-fold by feature, so a polygon's pixels are never both trained on and "
                   "tested (stratified by class for classifiers); spatial: k-fold by square blocks of the training "
                   "area, for spatially autocorrelated data; stratified: k-fold over pixels keeping class "
                   "proportions; kfold: k-fold over pixels (optimistic with polygons); column: folds given by "
                   "FOLD_COL; none: no cross-validation."),
    Parameter("NFOLDS", "Number of folds", Kind.INT, 5, minimum=2, maximum=100,
              help="Folds of the group, spatial, stratified and kfold cross-validations."),
    Parameter("FOLD_COL", "Field with the fold of each feature (CV = column)", Kind.FIELD, "", optional=True,
              parent="TEMPLATE",
              help="With CV = column: the field of the training layer giving each feature's fold (any values; one "
                   "fold per distinct value), such as a region or a date; not the label field (each fold would hold "
                   "classes the others never saw)."),
    Parameter("LOAD_MODEL", "Apply a saved model instead of training", Kind.FILE, "", optional=True,
              file_filter=f"{MODEL_FILTER};;All files (*)",
              help=f"Apply a model saved by SAVE_MODEL (a {MODEL_SUFFIX} file) to this raster without training: "
                   "its estimator, classes and band count come from the model, and the selected bands must be as "
                   "many as it was trained on. Other files (pickles) are refused unless TRUST_MODEL is set (see "
                   "docs/security.md)."),
    *advanced(
        Parameter("SK_PARAM", "Estimator parameters (JSON)", Kind.STRING, "", optional=True,
                  help='Keyword arguments of the estimator as a JSON object, e.g. {"n_estimators": 300, '
                       '"max_depth": 20}. An unknown keyword is an error that lists the valid ones. random_state is '
                       "set from RANDOM_SEED for the estimators that take one, n_jobs to all cores."),
        Parameter("SAMPLE_PER_POLYGON", "Pixels drawn per polygon at most", Kind.INT, 500, minimum=1,
                  help="Largest number of pixels a polygon contributes, "
                       "drawn at random with RANDOM_SEED, so large polygons do not outweigh small ones."),
        Parameter("RANDOM_SEED", "Random seed", Kind.INT, 0, minimum=0, maximum=SEED_MAXIMUM,
                  help="Seed of the pixels drawn in polygons, of the folds and of the estimator: the same seed gives "
                       "the same result."),
        Parameter("CLASS_COLOURS", "Class colours (JSON)", Kind.STRING, "", optional=True,
                  help='Colours of the classes as a JSON object, e.g. {"water": "#1f78b4", "forest": "#1b7837"}. '
                       "Classes not given take, in QGIS, the colours of the training layer's categorized style on "
                       "the label field; then the conventional colour of their land-cover name (water blue, forest "
                       "green, grass light green, cropland orange, urban red, bare soil brown, snow white, cloud "
                       "grey..., in English or French); the others a palette."),
        trust_model(),
        scheduler(),
    ),
    Parameter("OUTPUT", "Prediction", Kind.RASTER_DESTINATION,
              help="Classes (the smallest integer type that holds the class codes and a nodata value; text labels "
                   "become codes 1, 2, 3... in alphabetical order) with a paletted style naming each class, or the "
                   "predicted number (float32, NaN nodata) for a regressor."),
    Parameter("OUTPUT_CONFIDENCE", "Confidence (probability of the predicted class)", Kind.RASTER_DESTINATION, "",
              optional=True,
              help="Optional float32 raster: the probability the classifier gives the class it predicts (0-1). "
                   "For classifiers with predict_proba only."),
    Parameter("SAVE_MODEL", "Save the trained model", Kind.FILE_DESTINATION, "", optional=True,
              file_filter=MODEL_FILTER,
              help=f"Save the trained model ({MODEL_SUFFIX}: data only, with its classes, bands, parameters, "
                   "validation figures and software versions) to apply it to other rasters with LOAD_MODEL."),
    Parameter("REPORT", "Validation report (HTML)", Kind.FILE_DESTINATION, "", optional=True, created_by_default=True,
              file_filter="HTML files (*.html)",
              help="Self-contained HTML report: metrics per fold and overall, confusion matrix (or predicted "
                   "against observed values), per-class precision and recall, feature importances, class counts "
                   "and every parameter."),
    *polygon_parameters("Classes (classifiers only)"),
), (Output("ACCURACY", "Overall accuracy"), Output("KAPPA", "Cohen's kappa"), Output("F1_MACRO", "Macro F1 score"),
    Output("R2", "R\u00b2 (coefficient of determination)"), Output("RMSE", "Root mean squared error"),
    Output("MAE", "Mean absolute error"),
    Output("VALIDATED_ON", "Data the figures come from (test layer or cross-validation)", "string"),
    Output("CLASSES", "Class code of each label (JSON object)", "string"),
    Output("POLYGONS", "Polygons written to OUTPUT_POLYGONS")))
