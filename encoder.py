"""``iamap:encoder``: tile a raster, run the tiles through a vision transformer, write one feature GeoTIFF."""

from __future__ import annotations

from qgis.core import (QgsProcessingParameterBand, QgsProcessingParameterBoolean,
                       QgsProcessingParameterCrs, QgsProcessingParameterDefinition, QgsProcessingParameterEnum,
                       QgsProcessingParameterExtent, QgsProcessingParameterFile, QgsProcessingParameterNumber,
                       QgsProcessingParameterRasterDestination, QgsProcessingParameterRasterLayer,
                       QgsProcessingParameterString)

from .engine import catalog
from .utils.algorithm import IamapAlgorithm

BACKBONE_LIST = "".join(f"<li><code>{b.key}</code>: {b.label}</li>" for b in catalog.BACKBONES)


class EncoderAlgorithm(IamapAlgorithm):
    NAME = "encoder"
    DISPLAY_NAME = "Encode a raster with a deep-learning backbone"
    GROUP = "Features"
    GROUP_ID = "features"
    ICON = "encoder"
    HELP = f"""
<p>Cuts the raster into tiles, runs each tile through a pretrained vision transformer and writes one
float32 GeoTIFF with one band per feature. One output pixel is one model patch: with a ViT-S/16 and
224 px tiles, one output pixel covers 16 x 16 input pixels. The output is aligned with the input and keeps
its CRS; nodata stays nodata (a feature cell is nodata when most of its pixels are), and tiles that are all
nodata are not run through the model.</p>
<p>Runs in IAMAP's own Python environment, on the CPU or a GPU; it can be cancelled at any time. With
RESUME on, running it again with the same parameters and output file continues where it stopped.</p>
<p>Curated backbones (any timm model or <code>hf-hub:owner/repo</code> can be given in BACKBONE_NAME):
<ul>{BACKBONE_LIST}</ul></p>"""
    PARAMETER_HELP = {
        "INPUT": "Raster to encode: any band count, 8/16-bit integer or float, any CRS.",
        "BANDS": "Bands to feed to the model (default: all). The model's first layer is adapted to the band count.",
        "EXTENT": "Only encode this area (any CRS; transformed to the raster's). Default: the whole raster.",
        "SIZE": "Tile side in input pixels (default 224). Tiles are resized (antialiased) to the model input.",
        "STRIDE": "Step between tiles in input pixels; empty = SIZE (no overlap). Smaller values overlap the tiles "
                  "(more tiles, smoother features); larger than SIZE is refused. Must fall on the feature grid "
                  "(a multiple of SIZE divided by the model's patches per tile).",
        "BACKBONE": "Curated model (see the list above); the value is usable as text from the command line.",
        "BACKBONE_NAME": "Any timm model name (e.g. vit_base_patch16_224.augreg_in21k) or hf-hub:owner/repo; "
                         "overrides BACKBONE.",
        "PRETRAINED": "Load the published weights (downloaded once, then cached). Off: random weights, for tests.",
        "CKPT": "Local weights file (.safetensors, .pth, .pt, .bin) to load instead of the published ones. Read "
                "as tensors only; keys or shapes that do not fit the architecture are named in the error.",
        "DEVICE": "auto (GPU when available), cpu or cuda.",
        "CUDA_ID": "Which GPU, when there are several (0 = first).",
        "BATCH_SIZE": "Tiles per model call (CPU and GPU). Larger is faster until memory runs out.",
        "PRECISION": "auto (bf16 on CPUs with native bf16 and on recent GPUs, fp16 on older GPUs, else fp32), "
                     "fp32, bf16 or fp16 (GPU only).",
        "MERGE_METHOD": "How overlapping tiles are combined: average (weighted mean), first, last, min, max, "
                        "centre (each cell from the tile whose centre covers it: no seams) or cosine (mean "
                        "weighted by a cosine window: no seams).",
        "NORMALIZATION": "auto, model (the model's mean/std, for 8-bit RGB), dataset (per-band mean/std of the "
                         "processed extent, nodata excluded: any sensor) or none.",
        "TARGET_CRS": "Reproject the input to this CRS before encoding (optional).",
        "TARGET_RESOLUTION": "Resample the input to this pixel size, in units of the target CRS (optional, 0 = "
                             "keep).",
        "RESUME": "Continue an interrupted run with the same parameters and output file; reuse a complete one.",
        "OUTPUT": "Feature GeoTIFF (float32, one band per feature, NaN nodata). A <name>.iamap.json file beside "
                  "it records every parameter.",
    }

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Input raster"))
        self.addParameter(QgsProcessingParameterBand("BANDS", "Bands (default: all)", None, "INPUT", optional=True,
                                                     allowMultiple=True))
        self.addParameter(QgsProcessingParameterExtent("EXTENT", "Extent (default: whole raster)", optional=True))
        self.addParameter(QgsProcessingParameterNumber("SIZE", "Tile size (pixels)", QgsProcessingParameterNumber.Integer,
                                                       224, minValue=8))
        self.addParameter(QgsProcessingParameterNumber("STRIDE", "Stride (pixels, empty = tile size)",
                                                       QgsProcessingParameterNumber.Integer, None, optional=True,
                                                       minValue=1))
        self.addParameter(QgsProcessingParameterEnum("BACKBONE", "Backbone", list(catalog.BACKBONE_KEYS),
                                                     defaultValue=catalog.BACKBONE_KEYS[0], usesStaticStrings=True))
        self.addParameter(QgsProcessingParameterString("BACKBONE_NAME", "Other model (timm name or hf-hub:owner/repo)",
                                                       optional=True))
        self.addParameter(QgsProcessingParameterBoolean("PRETRAINED", "Use pretrained weights", True))
        self.addParameter(QgsProcessingParameterFile("CKPT", "Local checkpoint", optional=True,
                                                     fileFilter="Weights (*.safetensors *.pth *.pt *.bin *.ckpt)"))
        self.addParameter(QgsProcessingParameterEnum("DEVICE", "Device", list(catalog.DEVICES), defaultValue="auto",
                                                     usesStaticStrings=True))
        self.addParameter(QgsProcessingParameterNumber("BATCH_SIZE", "Batch size", QgsProcessingParameterNumber.Integer,
                                                       8, minValue=1))
        self.addParameter(QgsProcessingParameterEnum("MERGE_METHOD", "Merge overlapping tiles",
                                                     list(catalog.MERGE_METHODS), defaultValue="average",
                                                     usesStaticStrings=True))
        self.addParameter(QgsProcessingParameterBoolean("RESUME", "Resume an interrupted run", True))
        advanced = [
            QgsProcessingParameterNumber("CUDA_ID", "GPU number", QgsProcessingParameterNumber.Integer, 0, minValue=0),
            QgsProcessingParameterEnum("PRECISION", "Precision", list(catalog.PRECISIONS), defaultValue="auto",
                                       usesStaticStrings=True),
            QgsProcessingParameterEnum("NORMALIZATION", "Normalisation", list(catalog.NORMALIZATIONS),
                                       defaultValue="auto", usesStaticStrings=True),
            QgsProcessingParameterCrs("TARGET_CRS", "Target CRS", optional=True),
            QgsProcessingParameterNumber("TARGET_RESOLUTION", "Target resolution",
                                         QgsProcessingParameterNumber.Double, None, optional=True, minValue=0),
        ]
        for parameter in advanced:
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            self.addParameter(parameter)
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", "Features"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        source, layer = self.raster_path(parameters, "INPUT", context)
        target_crs = self.parameterAsCrs(parameters, "TARGET_CRS", context)
        extent_crs = target_crs if target_crs.isValid() else layer.crs()
        stride = parameters.get("STRIDE")
        params = {
            "INPUT": source,
            "BANDS": self.bands(parameters, "BANDS", context),
            "EXTENT": self.extent(parameters, "EXTENT", context, extent_crs),
            "SIZE": self.parameterAsInt(parameters, "SIZE", context),
            "STRIDE": self.parameterAsInt(parameters, "STRIDE", context) if stride not in (None, "") else None,
            "BACKBONE": self.enum_string(parameters, "BACKBONE", context),
            "BACKBONE_NAME": self.parameterAsString(parameters, "BACKBONE_NAME", context),
            "PRETRAINED": self.parameterAsBool(parameters, "PRETRAINED", context),
            "CKPT": self.parameterAsFile(parameters, "CKPT", context),
            "DEVICE": self.enum_string(parameters, "DEVICE", context),
            "CUDA_ID": self.parameterAsInt(parameters, "CUDA_ID", context),
            "BATCH_SIZE": self.parameterAsInt(parameters, "BATCH_SIZE", context),
            "PRECISION": self.enum_string(parameters, "PRECISION", context),
            "MERGE_METHOD": self.enum_string(parameters, "MERGE_METHOD", context),
            "NORMALIZATION": self.enum_string(parameters, "NORMALIZATION", context),
            "TARGET_CRS": target_crs.authid() or target_crs.toWkt() if target_crs.isValid() else "",
            "TARGET_RESOLUTION": self.parameterAsDouble(parameters, "TARGET_RESOLUTION", context),
            "RESUME": self.parameterAsBool(parameters, "RESUME", context),
            "OUTPUT": self.parameterAsOutputLayer(parameters, "OUTPUT", context),
        }
        outputs = self.run_engine("encoder", params, feedback)
        return {"OUTPUT": outputs["OUTPUT"]}
