"""The ml tool's map: every valid pixel predicted block by block (:func:`engine.blockwise.apply_to_rasters`),
classes with their colour table and optional confidence, or the predicted number with its display range.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio

from . import __version__
from .blockwise import RasterTarget, apply_to_rasters
from .class_codes import ClassCodes
from .errors import ParameterError
from .pixel_functions import PixelFunction
from .sampling import RunningSample

#: Predicted numbers kept to find the display range of a regression map.
DISPLAY_SAMPLE = 20_000


def predict_raster(p, model: dict, classes: ClassCodes | None, src, bands, window, output: Path,
                   confidence: Path | None, reporter) -> tuple[list[Path], dict]:
    """Write the prediction (and the confidence) of every valid pixel; returns (partial files, figures of the map:
    pixels per class, or the 2-98 % range of the predicted numbers)."""
    pipeline, meta = model["pipeline"], model["metadata"]
    tags = {"IAMAP_TOOL": "ml", "IAMAP_VERSION": __version__, "METHOD": meta["method"]}
    counts: dict[int, int] = {}
    if classes is None:
        targets = [RasterTarget(output, 1, "float32", float("nan"), (f"{meta['method']} prediction",))]
        kept = RunningSample(DISPLAY_SAMPLE, window.width * window.height, p.RANDOM_SEED)
        partials = apply_to_rasters(src, bands, window, targets, PixelFunction("predict", pipeline), reporter, tags,
                                    on_block=lambda inputs, values: kept.add(values[0], values[0]),
                                    scheduler=p.SCHEDULER)
        values = kept.arrays()[1]
        values = values[np.isfinite(values)]
        return partials, {"display_range": [float(v) for v in np.quantile(values, [0.02, 0.98])]
                          if len(values) else None}
    dtype, nodata = classes.raster_type
    tags["CLASSES"] = json.dumps(dict(zip(classes.codes, classes.names)))
    targets = [RasterTarget(output, 1, dtype, nodata, (f"{meta['method']} class",))]
    if confidence is None:
        predict = PixelFunction("predict", pipeline)
    else:
        if not hasattr(pipeline, "predict_proba"):
            raise ParameterError("OUTPUT_CONFIDENCE", f"{meta['method']} gives no class probabilities"
                                 + (' (set {"probability": true} in SK_PARAM)' if "SVC" in meta["method"] else "")
                                 + "; leave OUTPUT_CONFIDENCE empty or choose another estimator.")
        targets.append(RasterTarget(confidence, 1, "float32", float("nan"), ("probability of the predicted class",),
                                    "OUTPUT_CONFIDENCE"))
        predict = PixelFunction("predict_class_and_probability", pipeline)

    def count(_, values):
        for code, n in zip(*np.unique(values[0], return_counts=True)):
            counts[int(code)] = counts.get(int(code), 0) + int(n)

    partials = apply_to_rasters(src, bands, window, targets, predict, reporter, tags, on_block=count,
                                scheduler=p.SCHEDULER)
    write_colour_table(partials[0], classes, [meta["class_colours"][name] for name in classes.names], dtype)
    class_pixels = {classes.name_of(code): n for code, n in sorted(counts.items())}
    total = max(1, sum(class_pixels.values()))
    reporter.text("Predicted pixels per class: " + ", ".join(f"{name}: {n} ({100 * n / total:.1f} %)"
                                                             for name, n in class_pixels.items()) + ".")
    return partials, {"class_pixels": class_pixels}


def write_colour_table(path: Path, classes: ClassCodes, colours: list[str], dtype: str) -> None:
    """The classes' ``colours`` (``#rrggbb``, in the order of their codes) as the GeoTIFF's colour table (8 and
    16-bit only), so that the file shows its classes in any GIS; QGIS also gets the named paletted style."""
    if dtype not in ("uint8", "uint16"):
        return
    colours = {code: tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5)) + (255,)
               for code, colour in zip(classes.codes, colours)}
    with rasterio.open(path, "r+") as dst:
        dst.write_colormap(1, colours)
