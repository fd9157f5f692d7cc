"""``iamap:similarity``: cosine-similarity map of a (feature) raster to reference points, lines or polygons."""

from __future__ import annotations

from qgis.core import (QgsProcessing, QgsProcessingParameterBand, QgsProcessingParameterEnum,
                       QgsProcessingParameterExtent, QgsProcessingParameterFeatureSource,
                       QgsProcessingParameterNumber, QgsProcessingParameterRasterDestination,
                       QgsProcessingParameterRasterLayer, QgsProcessingParameterVectorDestination)

from .utils.algorithm import IamapAlgorithm
from .utils.styles import style_continuous

AGGREGATIONS = ("mean", "max")


class SimilarityAlgorithm(IamapAlgorithm):
    NAME = "similarity"
    DISPLAY_NAME = "Similarity to reference locations"
    GROUP = "Features"
    GROUP_ID = "features"
    ICON = "similarity"
    HELP = """
<p>Maps how similar every pixel is to reference locations: the cosine similarity between the pixel's vector
(all selected bands, typically the encoder's features) and the vectors under the references, from -1 to 1.
Computed with PyTorch block by block, so any raster size works. Nodata pixels stay nodata.</p>
<p>References are read at the exact pixels under them after reprojection to the raster's CRS; points outside
the raster (or EXTENT) or on nodata are dropped and counted in the log. The points actually used are written
to OUTPUT_POINTS.</p>"""
    PARAMETER_HELP = {
        "INPUT": "Raster whose pixel vectors are compared (usually a feature raster from iamap:encoder).",
        "BANDS": "Bands forming the vector (default: all).",
        "EXTENT": "Only compute this area (any CRS). Default: the whole raster.",
        "TEMPLATE": "Reference locations: points, lines or polygons, any CRS, any source QGIS reads (memory "
                    "layers and selections included).",
        "RANDOM_SAMPLES": "Points drawn at random inside the polygons (by area) and along the lines (by length); "
                          "default 500. Points of a point layer are all used.",
        "AGGREGATION": "mean: similarity to the mean reference vector (one prototype; default). max: highest "
                       "similarity over the references, i.e. to the nearest reference.",
        "DEVICE": "cpu (default) or cuda when a GPU is available; auto picks the GPU when there is one.",
        "OUTPUT": "Similarity raster (float32 in [-1, 1], NaN nodata), styled with a continuous colour ramp.",
        "OUTPUT_POINTS": "The reference points actually used (GeoPackage, in the raster's CRS).",
    }

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Input (feature) raster"))
        self.addParameter(QgsProcessingParameterBand("BANDS", "Bands (default: all)", None, "INPUT", optional=True,
                                                     allowMultiple=True))
        self.addParameter(QgsProcessingParameterExtent("EXTENT", "Extent (default: whole raster)", optional=True))
        self.addParameter(QgsProcessingParameterFeatureSource(
            "TEMPLATE", "Reference locations", [QgsProcessing.TypeVectorAnyGeometry]))
        self.addParameter(QgsProcessingParameterNumber("RANDOM_SAMPLES", "Random points in polygons / along lines",
                                                       QgsProcessingParameterNumber.Integer, 500, minValue=0))
        self.addParameter(QgsProcessingParameterEnum("AGGREGATION", "Aggregation", list(AGGREGATIONS),
                                                     defaultValue="mean", usesStaticStrings=True))
        self.addParameter(QgsProcessingParameterEnum("DEVICE", "Device", ["cpu", "auto", "cuda"], defaultValue="cpu",
                                                     usesStaticStrings=True))
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", "Similarity"))
        self.addParameter(QgsProcessingParameterVectorDestination("OUTPUT_POINTS", "Reference points used",
                                                                  QgsProcessing.TypeVectorPoint, optional=True,
                                                                  createByDefault=True))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        source, layer = self.raster_path(parameters, "INPUT", context)
        # memory layers and selections are written to a file the worker can read
        template = self.parameterAsCompatibleSourceLayerPath(parameters, "TEMPLATE", context, ["gpkg", "shp"], "gpkg",
                                                             feedback)
        points = self.parameterAsOutputLayer(parameters, "OUTPUT_POINTS", context)
        params = {
            "INPUT": source,
            "BANDS": self.bands(parameters, "BANDS", context),
            "EXTENT": self.extent(parameters, "EXTENT", context, layer.crs()),
            "TEMPLATE": template,
            "RANDOM_SAMPLES": self.parameterAsInt(parameters, "RANDOM_SAMPLES", context),
            "AGGREGATION": self.enum_string(parameters, "AGGREGATION", context),
            "DEVICE": self.enum_string(parameters, "DEVICE", context),
            "OUTPUT": self.parameterAsOutputLayer(parameters, "OUTPUT", context),
            "OUTPUT_POINTS": points.split("|")[0] if points else "",
        }
        outputs = self.run_engine("similarity", params, feedback)
        low, high = outputs.get("minimum"), outputs.get("maximum")
        if low is not None and high is not None:
            style_continuous(outputs["OUTPUT"], low, high)
            feedback.pushInfo(f"{outputs['references']} reference vectors; similarity from {low:.3f} to {high:.3f}.")
        result = {"OUTPUT": outputs["OUTPUT"]}
        if outputs.get("OUTPUT_POINTS"):
            result["OUTPUT_POINTS"] = outputs["OUTPUT_POINTS"]
        return result
