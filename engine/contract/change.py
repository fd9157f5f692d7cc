"""The change tool's parameters: two or more dates of one place, as features or as images it encodes itself."""

from __future__ import annotations

from .encoder import ENCODER
from .schema import Kind, Output, Parameter, Tool
from .shared import advanced, polygon_parameters

#: The encoder's parameters the change tool passes on when it encodes the dates itself (ENCODE).
ENCODING_PARAMETERS = ("BACKBONE", "BACKBONE_NAME", "PRETRAINED", "CKPT", "SIZE", "STRIDE", "MERGE_METHOD",
                       "DEVICE", "BATCH_SIZE")

CHANGE = Tool("change", (
    Parameter("INPUT", "First date", Kind.RASTER,
              help="The first date: a feature raster from iamap:encoder, or an image with ENCODE on. Its grid (CRS, "
                   "pixel size, extent) is the output's."),
    Parameter("LATER", "Later date(s)", Kind.RASTERS,
              help="One or more later dates of the same place, of the same kind as INPUT (feature rasters of the "
                   "same backbone, or images with ENCODE on), oldest first. Each is aligned on the first date's "
                   "grid: reprojected and resampled (bilinear) when its CRS, pixel size or extent differ; only "
                   "the overlap is compared."),
    Parameter("ENCODE", "Encode the dates first (they are images)", Kind.BOOL, False,
              help="Off (default): the dates are feature rasters of one backbone (the band count and the backbone "
                   "recorded by iamap:encoder must agree). On: the dates are images, each encoded by iamap:encoder "
                   "with the backbone below, then compared."),
    ENCODER["BACKBONE"], ENCODER["BACKBONE_NAME"],
    *advanced(*(ENCODER[name] for name in ENCODING_PARAMETERS[2:])),
    Parameter("THRESHOLD", "Change threshold (empty = automatic, Otsu)", Kind.FLOAT, None, optional=True,
              minimum=0, maximum=2,
              help="Pixels whose change reaches this value (0 to 2) are changed: OUTPUT_MASK, OUTPUT_POLYGONS and "
                   "CHANGED_AREA. Empty: chosen by Otsu's method on the histogram of the change (the log gives it)."),
    Parameter("OUTPUT", "Change", Kind.RASTER_DESTINATION,
              help="Change from the first date to each later one, 1 - cosine similarity of the pixel vectors (0 "
                   "same, 1 unrelated, 2 opposite): float32, one band per later date, NaN where either date is "
                   "nodata; styled with a colour ramp."),
    Parameter("OUTPUT_MASK", "Change mask", Kind.RASTER_DESTINATION, "", optional=True,
              help="uint8: 1 where the change (the largest over the later dates) reaches THRESHOLD, 0 unchanged, "
                   "255 nodata; styled."),
    Parameter("OUTPUT_DATE", "Date of largest change", Kind.RASTER_DESTINATION, "", optional=True,
              help="uint8: per pixel, the later date (1, 2... in LATER's order) toward which the change is largest, "
                   "whatever the threshold; 255 nodata."),
    *polygon_parameters("Changed areas"),
), (Output("THRESHOLD_USED", "Change threshold used"), Output("CHANGED_PIXELS", "Changed pixels"),
    Output("CHANGED_AREA", "Area changed (CRS units squared, m\u00b2 when projected)"),
    Output("CHANGED_FRACTION", "Share of the compared pixels that changed"),
    Output("POLYGONS", "Polygons written to OUTPUT_POLYGONS")))
