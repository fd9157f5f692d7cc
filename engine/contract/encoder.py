"""The encoder's parameters."""

from __future__ import annotations

from .. import catalog
from .schema import Kind, Parameter, Tool
from .shared import CHECKPOINT_SUFFIXES, advanced, bands, extent, input_raster, scheduler

ENCODER = Tool("encoder", (
    input_raster("Raster to encode: any band count, 8/16-bit integer or float, any CRS."),
    bands("Bands to feed to the model (default: all). The model's first layer is adapted to the band count."),
    extent("Only encode this area (any CRS; transformed to the raster's). Default: the whole raster."),
    Parameter("SIZE", "Tile size (pixels)", Kind.INT, 224, minimum=8,
              help="Tile side in input pixels. Tiles are resized (antialiased) to the model input."),
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
    *advanced(
        Parameter("CUDA_ID", "GPU number", Kind.INT, 0, minimum=0,
                  help="Which GPU, when there are several (0 = first)."),
        Parameter("PRECISION", "Precision", Kind.ENUM, "auto", choices=catalog.PRECISIONS,
                  help="auto (bf16 on CPUs with native bf16 and on recent GPUs, fp16 on older GPUs, else fp32), "
                       "fp32, bf16 or fp16 (GPU only)."),
        Parameter("RUNTIME", "Inference runtime", Kind.ENUM, "auto", choices=catalog.RUNTIMES,
                  help="auto (OpenVINO on a CPU when it is installed, else PyTorch), openvino (CPU, bf16 or fp32: "
                       "about 1.3 to 2 x PyTorch on a CPU; the model is exported on the first run, a few seconds, "
                       "then loaded from the cache) or torch (PyTorch, the reference; the only one on GPUs). "
                       "Features of every runtime agree with PyTorch fp32 ones to a per-pixel cosine of 0.999 or "
                       "better. A runtime that cannot run falls back to torch with a line in the log."),
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
        scheduler(),
    ),
    Parameter("OUTPUT", "Features", Kind.RASTER_DESTINATION,
              help="Feature GeoTIFF (one band per feature, NaN nodata; see Feature storage). A file of the same name "
                   "ending in .iamap.json beside it records every parameter."),
))
