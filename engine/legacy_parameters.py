"""IAMAP 1.0.2's parameters and what each became: the one table both sides read.

IAMAP 1.0.2 (the plugin published as ``iamap``, whose provider id and tool names this plugin keeps) named its
parameters differently and gave its choices as indices into its own lists. Scripts and ``.model3`` files written
for it pass those names; :mod:`engine.parameter_translation` reads them through this table, the QGIS side declares
the names that no longer exist as hidden parameters (so that models carry them), and ``docs/migration.md`` lists
them. Standard library only: QGIS's Python imports it.

A 1.0.2 parameter either becomes one of today's (:class:`Alias`), or has no equivalent (:class:`Dropped`): it is
then ignored, with a warning, when its value cannot change the result (its 1.0.2 default, or a setting of speed
or logging), and refused otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Refused:
    """A 1.0.2 value with no equivalent today: the run is refused with ``why`` (what to use instead)."""

    why: str


@dataclass(frozen=True)
class Alias:
    """A 1.0.2 parameter that became one of today's.

    Attributes
    ----------
    name : str
        The 1.0.2 id.
    becomes : str
        Today's id.
    values : dict
        1.0.2 value (an index of its list, or a boolean) -> today's value, a dict of today's parameters (when one
        1.0.2 value sets several), or :class:`Refused`. Empty: the value is taken as it is.
    kind : str
        How 1.0.2 values are read before looking them up: ``"index"``, ``"bool"`` or ``""`` (as given).
    note : str
        What differs, for the migration page.
    """

    name: str
    becomes: str
    values: dict = field(default_factory=dict)
    kind: str = ""
    note: str = ""


@dataclass(frozen=True)
class Dropped:
    """A 1.0.2 parameter with no equivalent: ignored (warning) for ``harmless`` values, refused for others.

    ``harmless`` is ``None`` when no value can change the result (speed, logging, temporary files).
    """

    name: str
    why: str
    harmless: tuple | None = None


#: Values that mean "not set" in 1.0.2's scripts (its dialog wrote "NULL" for an empty file).
UNSET = (None, "", "NULL", "None", 0, 0.0, False, "0", "false", "False")

# 1.0.2's lists, in its order (an index means the entry at that position) ---------------------------------------

#: BACKBONE_OPT: what 1.0.2 really ran for each index (its labels did not all match: index 0, shown as "ViT small
#: DINO patch 8", ran vit_base_patch16_224.dino, and index 3, shown as "ViT base DINO", ran the ViT-S/8).
BACKBONE_OPT_VALUES = {
    0: {"BACKBONE": "vit_base_patch16_224.dino"},
    1: {"BACKBONE": "ssl4eo_s12_vit_small_patch16_224.sentinel2_all_moco"},
    2: Refused("1.0.2's DOFA backbone (BACKBONE_OPT=2, through Pangaea) is not offered by this IAMAP; choose a "
               "BACKBONE (the SSL4EO-S12 models take 13 Sentinel-2 bands), or name a timm model in "
               "BACKBONE_NAME."),
    3: {"BACKBONE_NAME": "vit_small_patch8_224.dino"},
    4: {"BACKBONE": "vit_tiny_patch16_224.augreg_in21k"},
    5: {"BACKBONE": "vit_base_patch16_224.mae"},
    6: {"BACKBONE_NAME": "samvit_base_patch16.sa1b"},
    7: Refused("BACKBONE_OPT=7 is 1.0.2's \u201c--Empty--\u201d entry, which names no model; give the model in "
               "BACKBONE_CHOICE (today BACKBONE_NAME) or choose a BACKBONE."),
}
#: MERGE_METHOD as 1.0.2 listed it.
MERGE_METHODS_1_0_2 = ("first", "average", "min", "max", "sum", "count", "last")
MERGE_METHOD_VALUES = {index: (name if name not in ("sum", "count") else Refused(
    f"1.0.2's merge method {name!r} (MERGE_METHOD={index}) is not offered: it adds up or counts overlapping "
    f"tiles instead of combining their features; choose average, first, last, min, max, centre or cosine."))
    for index, name in enumerate(MERGE_METHODS_1_0_2)}

#: METHOD of reduction, cluster and ml: 1.0.2 built these lists at run time from the installed scikit-learn
#: (estimators of sklearn.decomposition and sklearn.cluster with fit and transform, then sklearn.manifold with
#: fit_transform, then UMAP; sklearn.cluster with fit_predict; sklearn.ensemble and sklearn.neighbors with predict,
#: sorted). These are the lists with scikit-learn 1.5 to 1.7 (1.0.2 asked for 1.5.1 or later); scikit-learn 1.8
#: added ClassicalMDS to sklearn.manifold, which moved the last reduction entries by one. An index is read only
#: where every list agrees (tests/engine/test_legacy_parameters.py rebuilds them from the pinned scikit-learn).
_DECOMPOSITION = ("DictionaryLearning", "FactorAnalysis", "FastICA", "IncrementalPCA", "KernelPCA",
                  "LatentDirichletAllocation", "MiniBatchDictionaryLearning", "MiniBatchNMF", "MiniBatchSparsePCA",
                  "NMF", "PCA", "SparseCoder", "SparsePCA", "TruncatedSVD")
_CLUSTER_TRANSFORMERS = ("Birch", "BisectingKMeans", "FeatureAgglomeration", "KMeans", "MiniBatchKMeans")
_MANIFOLD = ("Isomap", "LocallyLinearEmbedding", "MDS", "SpectralEmbedding", "TSNE")
REDUCTION_METHODS_1_0_2 = (
    _DECOMPOSITION + _CLUSTER_TRANSFORMERS + _MANIFOLD + ("UMAP",),
    _DECOMPOSITION + _CLUSTER_TRANSFORMERS + ("ClassicalMDS",) + _MANIFOLD + ("UMAP",),
)
CLUSTER_METHODS_1_0_2 = (
    ("AffinityPropagation", "AgglomerativeClustering", "Birch", "BisectingKMeans", "DBSCAN", "FeatureAgglomeration",
     "HDBSCAN", "KMeans", "MeanShift", "MiniBatchKMeans", "OPTICS", "SpectralClustering"),
)
ML_METHODS_1_0_2 = (
    ("AdaBoostClassifier", "AdaBoostRegressor", "BaggingClassifier", "BaggingRegressor", "ExtraTreesClassifier",
     "ExtraTreesRegressor", "GradientBoostingClassifier", "GradientBoostingRegressor",
     "HistGradientBoostingClassifier", "HistGradientBoostingRegressor", "IsolationForest", "KNeighborsClassifier",
     "KNeighborsRegressor", "LocalOutlierFactor", "NearestCentroid", "RadiusNeighborsClassifier",
     "RadiusNeighborsRegressor", "RandomForestClassifier", "RandomForestRegressor", "StackingClassifier",
     "StackingRegressor", "VotingClassifier", "VotingRegressor"),
)
#: Today's enum parameters whose name 1.0.2 shared with another order: in a 1.0.2 call (see
#: :func:`engine.parameter_translation.is_legacy_call`) an index is read in 1.0.2's order, otherwise in today's.
SHARED_ENUM_ORDERS = {
    "encoder": {"MERGE_METHOD": (MERGE_METHODS_1_0_2,)},
    "reduction": {"METHOD": REDUCTION_METHODS_1_0_2},
    "cluster": {"METHOD": CLUSTER_METHODS_1_0_2},
    "ml": {"METHOD": ML_METHODS_1_0_2},
}

# what each 1.0.2 parameter became, by tool ------------------------------------------------------------------------

_NO_EFFECT = "it only changed speed, logging or temporary files, which this IAMAP manages itself"


def _geo(tool_does: str) -> tuple:
    return (
        Dropped("CRS", f"{tool_does}; reproject with the encoder's TARGET_CRS", harmless=UNSET),
        Dropped("RESOLUTION", f"{tool_does}; resample with the encoder's TARGET_RESOLUTION", harmless=UNSET),
    )


_ESTIMATOR = (
    Alias("LOAD", "LOAD_MODEL", note="1.0.2's .pkl files are refused (a pickle can run code): fit again with "
                                     "SAVE_MODEL, or set TRUST_MODEL to apply it as 1.0.2 did."),
    Alias("SUBSET", "SAMPLE_SIZE", note="1.0.2 fitted on every pixel when SUBSET was empty; today on a sample "
                                        "of SAMPLE_SIZE valid pixels (100000 unless given)."),
    *_geo("this tool works on the input raster's own grid"),
)

LEGACY = {
    "encoder": (
        Alias("BACKBONE_OPT", "BACKBONE", BACKBONE_OPT_VALUES, kind="index",
              note="index of 1.0.2's list; 1 and 3 and 6 become the model 1.0.2 ran (3 and 6 through "
                   "BACKBONE_NAME); used only when BACKBONE_CHOICE is empty, as in 1.0.2."),
        Alias("BACKBONE_CHOICE", "BACKBONE_NAME"),
        Alias("CUDA", "DEVICE", {True: "auto", False: "cpu"}, kind="bool"),
        Alias("CRS", "TARGET_CRS"),
        Alias("RESOLUTION", "TARGET_RESOLUTION", note="in units of the target CRS (1.0.2: metres, switching a "
                                                      "geographic raster to UTM itself)."),
        Dropped("QUANT", "1.0.2's int8 quantisation changes the features; PRECISION (bf16, fp16) trades "
                         "precision for speed today", harmless=(False, "false", "False", 0, "0", None, "")),
        Dropped("COMPRESS", "1.0.2 rescaled the features to uint16 JPEG 2000, which changes them; OUTPUT_FORMAT "
                            "(float16, ZSTD) makes smaller files today", harmless=(False, "false", "False", 0, "0",
                                                                                 None, "")),
        Dropped("JSON_PARAM", "1.0.2 read every parameter from that file; pass them in the script instead (the "
                              "output's .iamap.json records them)", harmless=(None, "", "NULL", "None")),
        Dropped("PAUSES", _NO_EFFECT),
        Dropped("WORKERS", _NO_EFFECT),
        Dropped("REMOVE_TEMP_FILES", _NO_EFFECT),
        Dropped("TEMP_FILES_CLEANUP_FREQ", _NO_EFFECT),
        Dropped("VERBOSITY", _NO_EFFECT),
        # in 1.0.2's own tests but not read by 1.0.2 (left from earlier versions): ignoring them is what 1.0.2 did
        Dropped("FEAT_OPTION", "1.0.2 did not read it either"),
        Dropped("OUT_DTYPE", "1.0.2 did not read it either"),
    ),
    "reduction": (Alias("MAIN_PARAM", "N_COMPONENTS"), *_ESTIMATOR),
    "cluster": (Alias("MAIN_PARAM", "N_CLUSTERS", note="1.0.2's default was 3 clusters (today 8; a 1.0.2 call "
                                                       "keeps 3)."), *_ESTIMATOR),
    "similarity": _geo("this tool works on the input raster's own grid"),
    "ml": (
        Alias("DO_KFOLDS", "CV", {True: "kfold", False: "none"}, kind="bool",
              note="true: folds drawn at random over the sampled pixels (CV=kfold), or by FOLD_COL when it is "
                   "given (CV=column); CV=group (folds by feature) is the sounder choice with polygons."),
        Dropped("RANDOM_SAMPLES", "1.0.2 drew that many points over all the training polygons, by area; today "
                                  "each polygon gives up to SAMPLE_PER_POLYGON pixels (500 unless given): set that "
                                  "instead", harmless=(500, "500", None, "")),
        *_geo("this tool works on the input raster's own grid"),
    ),
    "diagnostics": (),
}

#: Today's parameters whose 1.0.2 default gave another result: a 1.0.2 call that leaves them out gets 1.0.2's.
LEGACY_DEFAULTS = {
    "encoder": {"BACKBONE": "vit_base_patch16_224.dino", "MERGE_METHOD": "first", "NORMALIZATION": "dataset",
                "PRECISION": "fp32", "STRIDE": 224},
    "reduction": {"RANDOM_SEED": 42},
    "cluster": {"N_CLUSTERS": 3, "RANDOM_SEED": 42},
    "similarity": {"RANDOM_SEED": 42},
    "ml": {"RANDOM_SEED": 42, "CV": "kfold"},
    "diagnostics": {},
}

#: The file 1.0.2 wrote in its OUTPUT folder ({stem}: the input raster's file name without extension).
#: 1.0.2's encoder wrote into a sub-folder named by a hash of the parameters and added -1, -2... to an
#: existing name; today the file lies in the folder itself and a run with the same parameters resumes it.
OUTPUT_FILE_NAMES = {"encoder": "{stem}-merged.tif", "reduction": "proj.tif", "cluster": "cluster.tif",
                     "similarity": "similarity.tif", "ml": "ml.tif"}
#: SAVE_MODEL was a checkbox (default on) saving ``<method>.pkl`` in the OUTPUT folder; today a file name.
MODEL_FILE_NAME = "{method}.iamapmodel"
SAVE_MODEL_TOOLS = ("reduction", "cluster", "ml")


def entries(tool: str) -> dict:
    """``tool``'s 1.0.2 parameters that today's does not have under the same name, by 1.0.2 id."""
    return {entry.name: entry for entry in LEGACY.get(tool, ())}
