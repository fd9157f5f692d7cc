"""The contract between the QGIS side and the engine: every tool's parameters and outputs, and the event kinds
of the worker's JSON-lines stream.

Standard library only (a test imports it in a bare ``python3 -I -S``): QGIS's Python imports it to build the
Processing parameters (:mod:`utils.parameters`), the engine imports it to build and check its parameter
dataclasses (:mod:`engine.parameters`). A parameter's id, label, default, bounds, choices and help exist here
and nowhere else.

Over 300 lines on purpose: it is the declarations of every parameter of every tool, and one file is what makes
it the one source of truth (a tool's parameters read top to bottom in the dialog's order).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from . import catalog


class EventKind(str, Enum):
    """The ``type`` of each JSON line the worker writes (see :mod:`engine.events`)."""

    PROGRESS = "progress"
    TEXT = "text"
    WARNING = "warning"
    ERROR = "error"
    RESULT = "result"


class Kind(str, Enum):
    """What a parameter holds; decides its QGIS widget and how the engine reads its value."""

    RASTER = "raster"  #: input raster file
    BANDS = "bands"  #: 1-based band numbers of the raster parameter named by ``parent``; None = all
    EXTENT = "extent"  #: [xmin, ymin, xmax, ymax] in the input raster's CRS; None = the whole raster
    VECTOR = "vector"  #: input vector file (any geometry)
    FIELD = "field"  #: a field name of the vector parameter named by ``parent``; "" = none
    FILE = "file"  #: input file (a checkpoint, a model)
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    STRING = "string"
    ENUM = "enum"  #: one of ``choices``, passed as the text itself (static strings)
    CRS = "crs"  #: authority id or WKT; "" = none
    RASTER_DESTINATION = "raster_destination"  #: output GeoTIFF
    VECTOR_DESTINATION = "vector_destination"  #: output vector file
    FILE_DESTINATION = "file_destination"  #: output file of another kind (a model, a report)


#: Parameters whose value is a file the run reads.
INPUT_FILE_KINDS = (Kind.RASTER, Kind.VECTOR, Kind.FILE)
#: Parameters whose value is a file the run writes.
DESTINATION_KINDS = (Kind.RASTER_DESTINATION, Kind.VECTOR_DESTINATION, Kind.FILE_DESTINATION)


@dataclass(frozen=True)
class Parameter:
    """One parameter of a tool, as both sides know it.

    Attributes
    ----------
    name : str
        The id used in scripts, ``qgis_process`` and error messages (``"STRIDE"``).
    label : str
        What the QGIS dialog shows.
    kind : Kind
    default
        The value when the parameter is not given (the dialog shows it too).
    help : str
        Explanation shown in the algorithm's help (HTML allowed).
    optional : bool
        May be left empty; the engine then uses ``default``.
    advanced : bool
        Shown under "Advanced parameters" in the dialog.
    minimum, maximum : float or None
        Bounds of numbers (checked by both sides).
    choices : tuple of str
        Allowed values of an ``ENUM``.
    choice_labels : tuple of str
        What the dialog shows for each choice, when the value itself is not readable (the curated backbones'
        keys); scripts still give the value.
    file_filter : str
        File dialog filter of ``FILE`` and ``FILE_DESTINATION``.
    parent : str
        The raster parameter a ``BANDS`` parameter takes its bands from, the vector parameter a ``FIELD``
        parameter takes its fields from.
    created_by_default : bool
        An optional destination that the dialog fills with a temporary file unless the user skips it (REPORT).
    """

    name: str
    label: str
    kind: Kind
    default: object = None
    help: str = ""
    optional: bool = False
    advanced: bool = False
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    file_filter: str = ""
    parent: str = ""
    created_by_default: bool = False
    choice_labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Output:
    """A figure an algorithm returns besides its files (``kind`` is ``"number"`` or ``"string"``)."""

    name: str
    label: str
    kind: str = "number"


@dataclass(frozen=True)
class Tool:
    """A tool's id (the worker's tool name and the algorithm's name) with its parameters and outputs."""

    name: str
    parameters: tuple[Parameter, ...]
    outputs: tuple[Output, ...] = ()

    def __getitem__(self, name: str) -> Parameter:
        for parameter in self.parameters:
            if parameter.name == name:
                return parameter
        raise KeyError(f"{self.name} has no parameter {name}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters)


def _advanced(*parameters: Parameter) -> tuple[Parameter, ...]:
    return tuple(Parameter(**{**p.__dict__, "advanced": True}) for p in parameters)


# Parameters several tools share -------------------------------------------------------------------------------

MODEL_SUFFIX = ".iamapmodel"
MODEL_FILTER = f"IAMAP model (*{MODEL_SUFFIX})"
CHECKPOINT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".ckpt")


def _input(help_text: str, label: str = "Input raster") -> Parameter:
    return Parameter("INPUT", label, Kind.RASTER, help=help_text)


def _bands(help_text: str = "Bands used as the pixel vector (default: all).") -> Parameter:
    return Parameter("BANDS", "Bands (default: all)", Kind.BANDS, optional=True, parent="INPUT", help=help_text)


def _extent(help_text: str) -> Parameter:
    return Parameter("EXTENT", "Extent (default: whole raster)", Kind.EXTENT, optional=True, help=help_text)


def _trust_model() -> Parameter:
    return Parameter("TRUST_MODEL", "Trust this model file (it may run code)", Kind.BOOL, False,
                     help="Load a LOAD_MODEL file that is not a plain IAMAP model (an older pickle, or one holding "
                          "objects outside IAMAP's list of safe types): it may run code from the file. Only for files "
                          "you made yourself. The log names the file, its SHA-256 and what was trusted.")


def _scheduler() -> Parameter:
    return Parameter("SCHEDULER", "Dask scheduler (empty = this machine)", Kind.STRING, "", optional=True,
                     advanced=True,
                     help="Address of a running Dask scheduler (tcp://host:8786) whose workers do the heavy step "
                          "(encoding the tiles, mapping every pixel), for the same output as on this machine; empty = "
                          "this machine. Start it with \u201cdask scheduler\u201d, then on each machine "
                          "\u201cdask worker tcp://host:8786\u201d (GPU workers: one per GPU with \u201c--resources "
                          "GPU=1\u201d), each with the plugin folder installed by \u201cpip install\u201d. The "
                          "input raster (and CKPT) must be readable by every worker at the same path (a shared "
                          "disk); fitted models are sent to the workers; the output is written on this machine.")


RANDOM_SEED_HELP = ("Seed of the random sample and of the method: the same seed gives the same result. With a seed "
                    "UMAP runs on one core.")

# encoder --------------------------------------------------------------------------------------------------------

ENCODER = Tool("encoder", (
    _input("Raster to encode: any band count, 8/16-bit integer or float, any CRS."),
    _bands("Bands to feed to the model (default: all). The model's first layer is adapted to the band count."),
    _extent("Only encode this area (any CRS; transformed to the raster's). Default: the whole raster."),
    Parameter("SIZE", "Tile size (pixels)", Kind.INT, 224, minimum=8,
              help="Tile side in input pixels (default 224). Tiles are resized (antialiased) to the model input."),
    Parameter("STRIDE", "Stride (pixels, empty = tile size)", Kind.INT, None, optional=True, minimum=1,
              help="Step between tiles in input pixels; empty = SIZE (no overlap). Smaller values overlap the tiles "
                   "(more tiles, smoother features); larger than SIZE is refused. Must fall on the feature grid (a "
                   "multiple of SIZE divided by the model's patches per tile)."),
    Parameter("BACKBONE", "Backbone (curated; the help describes each)", Kind.ENUM, catalog.BACKBONE_KEYS[0],
              choices=catalog.BACKBONE_KEYS, choice_labels=tuple(b.label for b in catalog.BACKBONES),
              help="Curated model (see the list above: size and what each is good for); the value is usable as text "
                   "from the command line. Not used when \u201cOther model\u201d is filled in."),
    Parameter("BACKBONE_NAME", "Other model, used instead of Backbone (timm name or hf-hub:owner/repo)", Kind.STRING,
              "", optional=True,
              help="Any timm model name (e.g. vit_base_patch16_224.augreg_in21k) or hf-hub:owner/repo; overrides "
                   "BACKBONE."),
    Parameter("PRETRAINED", "Use pretrained weights", Kind.BOOL, True,
              help="Load the published weights (downloaded once, then cached). Off: random weights, for tests."),
    Parameter("CKPT", "Local checkpoint", Kind.FILE, "", optional=True,
              file_filter="Weights (" + " ".join(f"*{s}" for s in CHECKPOINT_SUFFIXES) + ")",
              help="Local weights file (" + ", ".join(CHECKPOINT_SUFFIXES) + ") to load instead of the published "
                   "ones. Read as tensors only (never as code); keys or shapes that do not fit the architecture "
                   "are named in the error."),
    Parameter("DEVICE", "Device", Kind.ENUM, "auto", choices=catalog.DEVICES,
              help="auto (GPU when available), cpu or cuda."),
    Parameter("BATCH_SIZE", "Batch size", Kind.INT, 8, minimum=1,
              help="Tiles per model call. 8 suits CPUs (larger batches gain little there); on a GPU use 32 to 64 "
                   "(faster until GPU memory runs out: the error then says so)."),
    Parameter("MERGE_METHOD", "Merge overlapping tiles", Kind.ENUM, "average", choices=catalog.MERGE_METHODS,
              help="How overlapping tiles are combined: average (weighted mean), first, last, min, max, centre "
                   "(each cell from the tile whose centre covers it: no seams) or cosine (mean weighted by a "
                   "cosine window: no seams)."),
    Parameter("RESUME", "Resume an interrupted run", Kind.BOOL, True,
              help="Continue an interrupted run with the same parameters and output file; reuse a complete one."),
    *_advanced(
        Parameter("CUDA_ID", "GPU number", Kind.INT, 0, minimum=0,
                  help="Which GPU, when there are several (0 = first)."),
        Parameter("PRECISION", "Precision", Kind.ENUM, "auto", choices=catalog.PRECISIONS,
                  help="auto (bf16 on CPUs with native bf16 and on recent GPUs, fp16 on older GPUs, else fp32), "
                       "fp32, bf16 or fp16 (GPU only)."),
        Parameter("NORMALIZATION", "Normalisation", Kind.ENUM, "auto", choices=catalog.NORMALIZATIONS,
                  help="auto, model (the model's mean/std, for 8-bit RGB), dataset (per-band mean/std of the "
                       "processed extent, nodata excluded: any sensor) or none."),
        Parameter("TARGET_CRS", "Target CRS", Kind.CRS, "", optional=True,
                  help="Reproject the input to this CRS before encoding (optional)."),
        Parameter("TARGET_RESOLUTION", "Target resolution", Kind.FLOAT, 0.0, optional=True, minimum=0,
                  help="Resample the input to this pixel size, in units of the target CRS (optional, 0 = keep)."),
        Parameter("OUTPUT_FORMAT", "Feature storage", Kind.ENUM, "float32", choices=tuple(catalog.OUTPUT_FORMATS),
                  choice_labels=tuple(f.label for f in catalog.OUTPUT_FORMATS.values()),
                  help="How the feature GeoTIFF is stored: float32 uncompressed (default: fastest; features barely "
                       "compress), float32 with ZSTD or DEFLATE (lossless, about 10 % smaller, slower), float16 "
                       "(half the size, about 3 significant digits; read as float32 by GDAL and QGIS) or float16 "
                       "with ZSTD."),
        _scheduler(),
    ),
    Parameter("OUTPUT", "Features", Kind.RASTER_DESTINATION,
              help="Feature GeoTIFF (one band per feature, NaN nodata; see Feature storage). A file of the same name "
                   "ending in .iamap.json beside it records every parameter."),
))

# reduction and cluster: the tools that fit an estimator on a pixel sample ---------------------------------------

DEFAULT_SAMPLE_SIZE = 100_000


def _estimator_tool(name: str, methods: tuple[str, ...], method_help: str, size: Parameter, output_label: str,
                    output_help: str, outputs: tuple[Output, ...]) -> Tool:
    return Tool(name, (
        _input("Raster to work on: a feature raster from iamap:encoder, or any raster (raw bands too)."),
        _bands(),
        _extent("Only process this area (any CRS). Default: the whole raster."),
        Parameter("METHOD", "Method", Kind.ENUM, methods[0], choices=methods, help=method_help),
        size,
        # any file is accepted by the dialog, so that an older or foreign file gets the engine's explanation
        Parameter("LOAD_MODEL", "Apply a saved model instead of fitting", Kind.FILE, "", optional=True,
                  file_filter=f"{MODEL_FILTER};;All files (*)",
                  help=f"Apply a model saved by SAVE_MODEL (a {MODEL_SUFFIX} file) instead of fitting: METHOD, "
                       f"SK_PARAM, SAMPLE_SIZE and {size.name} then come from the model, and the band count must "
                       "match. Model files hold data only; other files (pickles, such as older .joblib models) are "
                       "refused, since loading one runs code from it, unless TRUST_MODEL is set (see "
                       "docs/security.md)."),
        *_advanced(
            Parameter("SK_PARAM", "Method parameters (JSON)", Kind.STRING, "", optional=True,
                      help='Extra keyword arguments of the method as a JSON object, e.g. {"max_iter": 500}. An '
                           "unknown keyword is an error that lists the valid ones. They override IAMAP's defaults."),
            Parameter("SAMPLE_SIZE", "Pixels sampled to fit", Kind.INT, DEFAULT_SAMPLE_SIZE, minimum=2,
                      help=f"Valid pixels drawn at random to fit the method (default {DEFAULT_SAMPLE_SIZE}); every "
                           "pixel is then transformed block by block, so the raster size does not matter. Methods "
                           "whose cost grows with the square of the sample use fewer (the log says how many)."),
            Parameter("RANDOM_SEED", "Random seed", Kind.INT, 0, minimum=0, help=RANDOM_SEED_HELP),
            _trust_model(),
            _scheduler(),
        ),
        Parameter("OUTPUT", output_label, Kind.RASTER_DESTINATION, help=output_help),
        Parameter("SAVE_MODEL", "Save the fitted model", Kind.FILE_DESTINATION, "", optional=True,
                  file_filter=MODEL_FILTER,
                  help=f"Save the fitted scaler and estimator ({MODEL_SUFFIX}: data only, with a record of method, "
                       "parameters, bands and software versions) to apply them to other rasters with LOAD_MODEL. "
                       "Saved before the raster is written, so a cancelled run can go on with LOAD_MODEL without "
                       "fitting again."),
    ), outputs)


REDUCTION = _estimator_tool(
    "reduction", catalog.REDUCTION_METHODS,
    "Estimator class: PCA (default, fast, linear), UMAP (umap-learn; non-linear, slower), or another scikit-learn "
    "decomposition/manifold.",
    Parameter("N_COMPONENTS", "Number of components", Kind.INT, 3, minimum=1, help="Bands of the output (default 3)."),
    "Reduced raster", "Reduced raster (GeoTIFF, float32, NaN nodata).",
    (Output("EXPLAINED_VARIANCE", "Explained variance ratio per component (JSON list)", "string"),
     Output("TOTAL_EXPLAINED_VARIANCE", "Total explained variance ratio")))

CLUSTER = _estimator_tool(
    "cluster", catalog.CLUSTER_METHODS,
    "Estimator class: KMeans (default), HDBSCAN (finds the number of clusters itself and marks noise), or another "
    "scikit-learn clusterer.",
    Parameter("N_CLUSTERS", "Number of clusters", Kind.INT, 8, minimum=1,
              help="Number of clusters (default 8) for the methods that take one (KMeans, Birch, GaussianMixture...). "
                   "HDBSCAN, DBSCAN, OPTICS, MeanShift and AffinityPropagation find it themselves. For HDBSCAN "
                   "IAMAP sets min_cluster_size to 0.5 % of the sample and min_samples to 10 unless SK_PARAM sets "
                   "them."),
    "Clusters", f"Cluster raster (GeoTIFF, int16, nodata {catalog.NODATA_LABEL}, noise {catalog.NOISE_LABEL}), with a "
                "paletted style.",
    (Output("CLUSTERS", "Number of clusters found"), Output("CLUSTER_SIZES", "Pixels per cluster (JSON object)", "string"),
     Output("NOISE_PIXELS", "Noise pixels"), Output("INERTIA", "Inertia"), Output("SILHOUETTE", "Silhouette score")))

# similarity -----------------------------------------------------------------------------------------------------

SIMILARITY_AGGREGATIONS = ("mean", "max")

SIMILARITY = Tool("similarity", (
    _input("Raster whose pixel vectors are compared (usually a feature raster from iamap:encoder).",
           "Input (feature) raster"),
    _bands("Bands forming the vector (default: all)."),
    _extent("Only compute this area (any CRS). Default: the whole raster."),
    Parameter("TEMPLATE", "Reference locations", Kind.VECTOR,
              help="Reference locations: points, lines or polygons, any CRS, any source QGIS reads (memory layers "
                   "and selections included)."),
    Parameter("RANDOM_SAMPLES", "Random points in polygons / along lines", Kind.INT, 500, minimum=0,
              maximum=100_000,
              help="Points drawn at random inside the polygons (by area) and along the lines (by length); default "
                   "500, at most 100000. Points of a point layer are all used."),
    Parameter("AGGREGATION", "Aggregation", Kind.ENUM, "mean", choices=SIMILARITY_AGGREGATIONS,
              help="mean: similarity to the mean reference vector (one prototype; default). max: highest similarity "
                   "over the references, i.e. to the nearest reference."),
    Parameter("DEVICE", "Device", Kind.ENUM, "auto", choices=catalog.DEVICES,
              help="auto (the GPU when there is one, else the CPU; default), cpu or cuda."),
    *_advanced(Parameter("RANDOM_SEED", "Random seed", Kind.INT, 0, minimum=0,
                         help="Seed of the random points drawn in polygons and along lines."), _scheduler()),
    Parameter("OUTPUT", "Similarity", Kind.RASTER_DESTINATION,
              help="Similarity raster (float32 in [-1, 1], NaN nodata), styled with a continuous colour ramp."),
    Parameter("OUTPUT_POINTS", "Reference points used", Kind.VECTOR_DESTINATION, "", optional=True,
              help="The reference points actually used (GeoPackage, in the raster's CRS)."),
))

# ml: supervised estimators trained from labelled vectors ----------------------------------------------------------

DEFAULT_SAMPLE_PER_POLYGON = 500

ML = Tool("ml", (
    _input("Raster whose pixel vectors are classified or mapped: a feature raster from iamap:encoder (or its "
           "reduction), or any raster (raw bands too)."),
    _bands(),
    _extent("Only predict this area (any CRS); training features outside it are dropped. Default: the whole "
            "raster."),
    Parameter("TEMPLATE", "Training data (labelled points or polygons)", Kind.VECTOR, "", optional=True,
              help="Labelled points or polygons, any CRS, any source QGIS reads (memory layers and selections "
                   "included). A point gives the pixel under it, a polygon the pixels whose centre it holds (at "
                   "most SAMPLE_PER_POLYGON, drawn at random), a line the pixels it crosses. Not needed with "
                   "LOAD_MODEL."),
    Parameter("GT_COL", "Field with the labels", Kind.FIELD, "", optional=True, parent="TEMPLATE",
              help="Field of the training layer holding the labels: class names or codes (text or whole numbers) "
                   "for a classifier, numbers for a regressor. Features without a label are left out (the log "
                   "counts them)."),
    Parameter("TEMPLATE_TEST", "Independent test data", Kind.VECTOR, "", optional=True,
              help="Labelled points or polygons never used for training, with the same label field: the final "
                   "model is evaluated on them, and these figures are the tool's outputs. With LOAD_MODEL: "
                   "evaluates the saved model."),
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
              help="Folds of the group, spatial, stratified and kfold cross-validations (default 5)."),
    Parameter("FOLD_COL", "Field with the fold of each feature (CV = column)", Kind.FIELD, "", optional=True,
              parent="TEMPLATE",
              help="With CV = column: the field of the training layer giving each feature's fold (any values; one "
                   "fold per distinct value)."),
    Parameter("LOAD_MODEL", "Apply a saved model instead of training", Kind.FILE, "", optional=True,
              file_filter=f"{MODEL_FILTER};;All files (*)",
              help=f"Apply a model saved by SAVE_MODEL (a {MODEL_SUFFIX} file) to this raster without training: "
                   "its estimator, classes and band count come from the model, and the selected bands must be as "
                   "many as it was trained on. Other files (pickles) are refused unless TRUST_MODEL is set (see "
                   "docs/security.md)."),
    *_advanced(
        Parameter("SK_PARAM", "Estimator parameters (JSON)", Kind.STRING, "", optional=True,
                  help='Keyword arguments of the estimator as a JSON object, e.g. {"n_estimators": 300, '
                       '"max_depth": 20}. An unknown keyword is an error that lists the valid ones. random_state is '
                       "set from RANDOM_SEED for the estimators that take one, n_jobs to all cores."),
        Parameter("SAMPLE_PER_POLYGON", "Pixels drawn per polygon at most", Kind.INT, DEFAULT_SAMPLE_PER_POLYGON,
                  minimum=1,
                  help=f"Largest number of pixels a polygon contributes (default {DEFAULT_SAMPLE_PER_POLYGON}), "
                       "drawn at random with RANDOM_SEED, so large polygons do not outweigh small ones."),
        Parameter("RANDOM_SEED", "Random seed", Kind.INT, 0, minimum=0,
                  help="Seed of the pixels drawn in polygons, of the folds and of the estimator: the same seed gives "
                       "the same result."),
        _trust_model(),
        _scheduler(),
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
), (Output("ACCURACY", "Overall accuracy"), Output("KAPPA", "Cohen's kappa"), Output("F1_MACRO", "Macro F1 score"),
    Output("R2", "R\u00b2 (coefficient of determination)"), Output("RMSE", "Root mean squared error"),
    Output("MAE", "Mean absolute error"),
    Output("VALIDATED_ON", "Data the figures come from (test layer or cross-validation)", "string"),
    Output("CLASSES", "Class code of each label (JSON object)", "string")))

# diagnostics ----------------------------------------------------------------------------------------------------

DIAGNOSTICS = Tool("diagnostics", (
    Parameter("OUTPUT", "Report file (JSON)", Kind.FILE_DESTINATION, "", optional=True,
              file_filter="JSON files (*.json)", help="Optional JSON file receiving the report."),
    Parameter("REPORT", "Report (HTML)", Kind.FILE_DESTINATION, "", optional=True, created_by_default=True,
              file_filter="HTML files (*.html)",
              help="The report as a page (one table per side), listed in the Results Viewer: open it and copy it "
                   "into a bug report."),
))

TOOLS: dict[str, Tool] = {tool.name: tool for tool in (ENCODER, REDUCTION, CLUSTER, SIMILARITY, ML, DIAGNOSTICS)}


def label(tool: str, parameter: str) -> str:
    """The dialog label of ``parameter`` of ``tool`` (the id itself when the tool does not declare it)."""
    spec = TOOLS.get(tool)
    try:
        return spec[parameter].label if spec else parameter
    except KeyError:
        return parameter
