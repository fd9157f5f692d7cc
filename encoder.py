"""``iamap:encoder``: tile a raster, run the tiles through a vision transformer, write one feature GeoTIFF."""

from __future__ import annotations

import math

from .engine import catalog, contract
from .utils.algorithm import IamapAlgorithm
from .utils.loading import load_styled
from .utils.styles import cumulative_cut_ranges, style_rgb

BACKBONE_LIST = "".join(f"<li><code>{b.key}</code>: {b.label}</li>" for b in catalog.BACKBONES)
#: The numbers the help states, from the contract's default model and tile size (not from one example model).
DEFAULT_MODEL = catalog.backbone(contract.ENCODER["BACKBONE"].default)
DEFAULT_SIZE = contract.ENCODER["SIZE"].default
DEFAULT_CELL = DEFAULT_MODEL.cell_pixels(DEFAULT_SIZE)
EDGE_CELLS = math.ceil(512 / DEFAULT_CELL)  # the help's example: cells along a 512 px input


class EncoderAlgorithm(IamapAlgorithm):
    """``iamap:encoder``: a raster's deep features, tile by tile (engine: :mod:`engine.encoder`)."""

    TOOL = contract.ENCODER
    DISPLAY_NAME = "Encode raster (deep features)"
    GROUP = "1 \u2013 Encode"
    GROUP_ID = "encode"
    ICON = "encoder"
    SHORT_DESCRIPTION = "Per-patch features of a pretrained vision transformer (DINOv2, ViT, SSL4EO...)"
    TAGS = ("encoder", "embedding", "features", "vision transformer", "vit", "dinov2", "dino", "timm", "torchgeo",
            "backbone", "segmentation", "gpu")
    HELP = f"""
<p>Cuts the raster into tiles, runs each tile through a pretrained vision transformer and writes one GeoTIFF with one
band per feature (float32, or float16 to halve the file: see Feature storage). One output pixel is one model patch: with
the default backbone (patches of {DEFAULT_MODEL.patch} px, a {DEFAULT_MODEL.input_size} px input) and {DEFAULT_SIZE} px
tiles, one output pixel covers {DEFAULT_CELL:g} x {DEFAULT_CELL:g} input pixels. The output is aligned with the
input and keeps its CRS; nodata stays nodata (a feature cell is nodata when most of its pixels are), and tiles that are
all nodata are not run through the model.</p>
<p>The feature grid starts at the input's top-left corner with whole cells, so when the input is not a whole number of
cells its last row and column reach past the input's bottom and right edges by less than one cell (a 512 px
input at 10 m gives {EDGE_CELLS} cells of {DEFAULT_CELL * 10:g} m: {EDGE_CELLS * DEFAULT_CELL * 10:g} m); these edge
cells are computed from their part inside the input (see the FAQ, "Why does the feature raster reach past my
input's edge?").</p>
<p>Runs in IAMAP's own Python environment, on the CPU or a GPU; it can be cancelled at any time. With
RESUME on, running it again with the same parameters and output file continues where it stopped.</p>
<p>Curated backbones (any timm model or <code>hf-hub:owner/repo</code> can be given in BACKBONE_NAME):
<ul>{BACKBONE_LIST}</ul></p>"""

    def extent_crs(self, parameters, context):
        target_crs = self.parameterAsCrs(parameters, "TARGET_CRS", context)
        return target_crs if target_crs.isValid() else super().extent_crs(parameters, context)

    def process(self, parameters, context, feedback):
        params = self.engine_parameters(parameters, context, feedback)
        outputs = self.run_engine(params, feedback)
        ranges = cumulative_cut_ranges(outputs["OUTPUT"])  # features 1-3 as RGB: a first look at the structure
        if len(ranges) == 3:
            style_rgb(outputs["OUTPUT"], ranges)
        model = params["BACKBONE_NAME"] or params["BACKBONE"]
        load_styled(context, outputs["OUTPUT"], f"{self.input_name(parameters, context)} features ({model})")
        return {"OUTPUT": outputs["OUTPUT"]}
