"""The similarity tool's parameters."""

from __future__ import annotations

from .. import catalog
from .schema import Kind, Parameter, Tool
from .shared import SEED_MAXIMUM, advanced, bands, extent, input_raster, polygon_parameters, scheduler

SIMILARITY_AGGREGATIONS = ("mean", "max")

SIMILARITY = Tool("similarity", (
    input_raster("Raster whose pixel vectors are compared (usually a feature raster from iamap:encoder).",
           "Input (feature) raster"),
    bands("Bands forming the vector (default: all)."),
    extent("Only compute this area (any CRS). Default: the whole raster."),
    Parameter("TEMPLATE", "Reference locations", Kind.VECTOR,
              help="Reference locations: points, lines or polygons, any CRS, any source QGIS reads (memory layers "
                   "and selections included)."),
    Parameter("RANDOM_SAMPLES", "Random points in polygons / along lines", Kind.INT, 500, minimum=0,
              maximum=100_000,
              help="Points drawn at random inside the polygons (by area) and along the lines (by length); at most "
                   "100000. Points of a point layer are all used."),
    Parameter("AGGREGATION", "Aggregation", Kind.ENUM, "mean", choices=SIMILARITY_AGGREGATIONS,
              help="mean: similarity to the mean reference vector (one prototype; default). max: highest similarity "
                   "over the references, i.e. to the nearest reference."),
    Parameter("DEVICE", "Device", Kind.ENUM, "auto", choices=catalog.DEVICES,
              help="auto (the GPU when there is one, else the CPU; default), cpu or cuda."),
    *advanced(Parameter("RANDOM_SEED", "Random seed", Kind.INT, 0, minimum=0, maximum=SEED_MAXIMUM,
                         help="Seed of the random points drawn in polygons and along lines."), scheduler()),
    Parameter("OUTPUT", "Similarity", Kind.RASTER_DESTINATION,
              help="Similarity raster (float32 in [-1, 1], NaN nodata), styled with a continuous colour ramp."),
    Parameter("THRESHOLD", "Threshold of the polygons (similarity)", Kind.FLOAT, None, optional=True,
              minimum=-1, maximum=1,
              help="With OUTPUT_POLYGONS: the pixels whose similarity reaches this value (-1 to 1) become "
                   "polygons. Needed for OUTPUT_POLYGONS."),
    Parameter("OUTPUT_POINTS", "Reference points used", Kind.VECTOR_DESTINATION, "", optional=True,
              created_by_default=True,
              help="The reference points actually used (GeoPackage, in the raster's CRS)."),
    *polygon_parameters("Pixels reaching the threshold"),
))
