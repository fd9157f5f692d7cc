"""The similarity tool: cosine similarity of every pixel's vector to reference locations, in pure torch.

``mean``  similarity to one prototype, the mean of the reference vectors (the default).
``max``   the highest similarity over the reference vectors: similarity to the nearest reference.

The similarity itself is :func:`engine.cosine.cosine_similarity`; block by block
(:func:`engine.blockwise.apply_to_raster`), float32 in [-1, 1], NaN where any band is nodata.
"""

from __future__ import annotations

import numpy as np

from . import __version__
from .parameters import parameter_class
from .blockwise import apply_to_raster
from .devices import choose_device
from .errors import ParameterError
from .pixel_functions import PixelFunction
from .polygons import at_least, check_polygons_path, tool_polygons
from .raster_writing import check_output, finalize
from .rasters import check_bands, extent_window, open_raster
from .vectors import check_points_path, write_points, pixel_values, read_reference_points

#: Share of the progress bar for reading the pixels under the reference points (the rest: the raster pass).
REFERENCE_PROGRESS = 10


class SimilarityParams(parameter_class("similarity")):
    """The similarity tool's parameters (see ``engine.contract.SIMILARITY``)."""

    def check(self) -> None:
        check_points_path(self.OUTPUT_POINTS)
        check_polygons_path(self.OUTPUT_POLYGONS)
        if self.OUTPUT_POLYGONS and self.THRESHOLD is None:
            raise ParameterError("THRESHOLD", "OUTPUT_POLYGONS are the pixels whose similarity reaches THRESHOLD: give "
                                              "it (-1 to 1), or leave OUTPUT_POLYGONS empty.")


def run_similarity(params: dict, reporter) -> dict:
    """The similarity tool: the cosine similarity of every pixel to the references' vectors.

    Returns the outputs sent in the worker's ``result`` event."""
    p = SimilarityParams.from_dict(params)
    output = check_output(p.OUTPUT)
    device = f"{p.DEVICE} on each worker of {p.SCHEDULER}" if p.SCHEDULER else choose_device(p.DEVICE, 0)
    with open_raster(p.INPUT) as src:
        bands = check_bands(src, p.BANDS)
        window = extent_window(src, p.EXTENT)
        points = read_reference_points(p.TEMPLATE, src.crs, p.RANDOM_SAMPLES, seed=p.RANDOM_SEED, reporter=reporter,
                                       name=p.shown("TEMPLATE"))
        reporter.text(f"Reading the pixels under {len(points)} reference point(s)...")
        values, used = pixel_values(src, bands, window, points, reporter.stage(0, REFERENCE_PROGRESS))
        reporter.text(f"{len(used)} reference vector(s) of {len(bands)} band(s); aggregation {p.AGGREGATION}; "
                      f"device {device}.")
        extremes = [np.inf, -np.inf]
        # by name and data, so that the workers of a cluster (SCHEDULER) can compute it too
        similarity = PixelFunction("cosine_similarity", (np.ascontiguousarray(values), p.AGGREGATION, p.DEVICE))

        def track_range(_, result):
            extremes[0], extremes[1] = min(extremes[0], float(result.min())), max(extremes[1], float(result.max()))

        partial = apply_to_raster(src, bands, window, output, 1, "float32", float("nan"), similarity,
                                  reporter.stage(REFERENCE_PROGRESS, 100),
                                  descriptions=[f"cosine similarity ({p.AGGREGATION})"],
                                  tags={"IAMAP_TOOL": "similarity", "IAMAP_VERSION": __version__,
                                        "AGGREGATION": p.AGGREGATION, "REFERENCES": len(used)},
                                  on_block=track_range, scheduler=p.SCHEDULER)
    low, high = extremes
    finalize(partial, output, {"tool": "similarity", "iamap_version": __version__, "parameters": params,
                               "references": len(used)})
    outputs = {"OUTPUT": str(output), "references": len(used), "minimum": low, "maximum": high}
    if p.OUTPUT_POINTS:
        points = used.assign(fid_source=used["source"].astype(int)).drop(columns=["source"])
        outputs["OUTPUT_POINTS"] = str(write_points(points, p.OUTPUT_POINTS))
    if p.OUTPUT_POLYGONS:
        polygons = tool_polygons(p, params, output, at_least(p.THRESHOLD),
                                 {1: f"similarity \u2265 {p.THRESHOLD:g}"}, reporter.stage(100, 100))
        outputs.update(OUTPUT_POLYGONS=polygons["OUTPUT_POLYGONS"], POLYGONS=polygons["POLYGONS"])
    return outputs
