"""Base class of the tools that fit a scikit-learn estimator on pixels (reduction, cluster; later ml): the
parameters they share, and the dict of them handed to the engine."""

from __future__ import annotations

from qgis.core import (QgsProcessingParameterBand, QgsProcessingParameterBoolean, QgsProcessingParameterDefinition,
                       QgsProcessingParameterEnum, QgsProcessingParameterExtent, QgsProcessingParameterFile,
                       QgsProcessingParameterFileDestination, QgsProcessingParameterNumber,
                       QgsProcessingParameterRasterDestination, QgsProcessingParameterRasterLayer,
                       QgsProcessingParameterString)

from .algorithm import IamapAlgorithm

MODEL_FILTER = "IAMAP model (*.iamapmodel)"
#: LOAD_MODEL takes any file: the engine says why a pickle (an old .joblib model) is refused and how to refit, and
#: TRUST_MODEL can load one; QGIS's own filter check would only say "Incorrect parameter value".
LOAD_MODEL_FILTER = MODEL_FILTER + ";;All files (*)"

#: Help of the shared parameters; subclasses add their own and the METHOD text.
SHARED_PARAMETER_HELP = {
    "INPUT": "Raster to work on: a feature raster from iamap:encoder, or any raster (raw bands too).",
    "BANDS": "Bands used as the pixel vector (default: all).",
    "EXTENT": "Only process this area (any CRS). Default: the whole raster.",
    "SK_PARAM": 'Extra keyword arguments of the method as a JSON object, e.g. {"max_iter": 500}. An unknown '
                "keyword is an error that lists the valid ones. They override IAMAP's defaults.",
    "SAMPLE_SIZE": "Valid pixels drawn at random to fit the method (default 100000); every pixel is then "
                   "transformed block by block, so the raster size does not matter. Methods whose cost grows "
                   "with the square of the sample use fewer (the log says how many).",
    "RANDOM_SEED": "Seed of the sample and of the method: the same seed gives the same result. With a seed "
                   "UMAP runs on one core.",
    "LOAD_MODEL": "Apply a model saved by SAVE_MODEL (.iamapmodel) instead of fitting (METHOD, SK_PARAM, "
                  "SAMPLE_SIZE and the size parameter then come from the model; the band count must match). A "
                  ".iamapmodel file cannot run code: IAMAP reads its record first and builds only the "
                  "scikit-learn, hdbscan and numpy types its own models hold. Pickles (.joblib models of earlier "
                  "IAMAP versions, or any other) are refused, since loading one runs code from it: fit the "
                  "model again, or see TRUST_MODEL.",
    "TRUST_MODEL": "Load LOAD_MODEL even if it is a pickle (an old .joblib model) or holds types IAMAP does not "
                   "know: it may run code from the file. Only for a file you made or fully trust; the log "
                   "names the file, its sha256 and what was trusted. Default: off.",
    "SAVE_MODEL": "Save the fitted scaler and estimator to a .iamapmodel file (a record of method, parameters, "
                  "bands and software versions, and the fitted objects in skops' safe format) to apply them "
                  "to other rasters with LOAD_MODEL. Saved before the raster is written, so a cancelled run "
                  "can go on with LOAD_MODEL without fitting again.",
}


class EstimatorAlgorithm(IamapAlgorithm):
    """Subclasses set ``TOOL``, ``METHODS``, ``SIZE`` (id, label, default) and ``OUTPUT_LABEL``."""

    GROUP = "Features"
    GROUP_ID = "features"
    TOOL = ""
    METHODS: tuple[str, ...] = ()
    SIZE: tuple[str, str, int] = ("", "", 0)
    OUTPUT_LABEL = ""

    def add_shared_parameters(self):
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Input raster"))
        self.addParameter(QgsProcessingParameterBand("BANDS", "Bands (default: all)", None, "INPUT", optional=True,
                                                     allowMultiple=True))
        self.addParameter(QgsProcessingParameterExtent("EXTENT", "Extent (default: whole raster)", optional=True))
        self.addParameter(QgsProcessingParameterEnum("METHOD", "Method", list(self.METHODS),
                                                     defaultValue=self.METHODS[0], usesStaticStrings=True))
        size_id, size_label, size_default = self.SIZE
        self.addParameter(QgsProcessingParameterNumber(size_id, size_label, QgsProcessingParameterNumber.Integer,
                                                       size_default, minValue=1))
        self.addParameter(QgsProcessingParameterFile("LOAD_MODEL", "Apply a saved model instead of fitting",
                                                     optional=True, fileFilter=LOAD_MODEL_FILTER))
        advanced = [
            QgsProcessingParameterString("SK_PARAM", "Method parameters (JSON)", optional=True),
            QgsProcessingParameterNumber("SAMPLE_SIZE", "Pixels sampled to fit", QgsProcessingParameterNumber.Integer,
                                         100_000, minValue=2),
            QgsProcessingParameterNumber("RANDOM_SEED", "Random seed", QgsProcessingParameterNumber.Integer, 0,
                                         minValue=0),
            QgsProcessingParameterBoolean("TRUST_MODEL", "Trust this model file (it may run code)", False),
        ]
        for parameter in advanced:
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            self.addParameter(parameter)
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", self.OUTPUT_LABEL))
        self.addParameter(QgsProcessingParameterFileDestination("SAVE_MODEL", "Save the fitted model", MODEL_FILTER,
                                                                optional=True, createByDefault=False))

    def shared_parameters(self, parameters, context) -> tuple[dict, object]:
        """The engine's parameter dict, and the input layer."""
        source, layer = self.raster_path(parameters, "INPUT", context)
        size_id = self.SIZE[0]
        params = {
            "INPUT": source,
            "BANDS": self.bands(parameters, "BANDS", context),
            "EXTENT": self.extent(parameters, "EXTENT", context, layer.crs()),
            "METHOD": self.enum_string(parameters, "METHOD", context),
            size_id: self.parameterAsInt(parameters, size_id, context),
            "SK_PARAM": self.parameterAsString(parameters, "SK_PARAM", context),
            "SAMPLE_SIZE": self.parameterAsInt(parameters, "SAMPLE_SIZE", context),
            "RANDOM_SEED": self.parameterAsInt(parameters, "RANDOM_SEED", context),
            "LOAD_MODEL": self.parameterAsFile(parameters, "LOAD_MODEL", context),
            "TRUST_MODEL": self.parameterAsBool(parameters, "TRUST_MODEL", context),
            "SAVE_MODEL": self.parameterAsFileOutput(parameters, "SAVE_MODEL", context),
            "OUTPUT": self.parameterAsOutputLayer(parameters, "OUTPUT", context),
        }
        return params, layer

    def saved_model_output(self, params: dict) -> dict:
        return {"SAVE_MODEL": params["SAVE_MODEL"]} if params["SAVE_MODEL"] else {}
