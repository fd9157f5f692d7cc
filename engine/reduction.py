"""The reduction tool: fit a decomposition or manifold (PCA, UMAP...) on a pixel sample, then write every
pixel's embedding, block by block: float32, one band per component, NaN where the input is nodata."""

from __future__ import annotations

import numpy as np

from . import __version__
from .blockwise import apply_to_raster
from .estimator_run import estimator_run
from .pixel_functions import PixelFunction
from .raster_writing import finalize
from .sampling import RunningSample

#: Pixels kept from the block-wise pass to set the display range of each component.
FIGURE_SAMPLE = 20_000


def run_reduction(params: dict, reporter) -> dict:
    """The reduction tool: fit (or load) a reduction on a pixel sample and write the reduced raster.

    Returns the outputs sent in the worker's ``result`` event."""
    with estimator_run("reduction", params, reporter) as run:
        meta, model = run.metadata, run.model
        count = meta["fit_figures"]["output_count"]
        figures = RunningSample(FIGURE_SAMPLE, run.window.width * run.window.height, run.params.RANDOM_SEED)
        partial = apply_to_raster(
            run.src, run.bands, run.window, run.output, count, "float32", float("nan"),
            PixelFunction("apply_fitted", (model, "float32")), run.reporter,
            descriptions=[f"{meta['method']} component {i}" for i in range(1, count + 1)],
            tags={"IAMAP_TOOL": "reduction", "IAMAP_VERSION": __version__, "METHOD": meta["method"]},
            # only the embedding is used: the sample keeps it twice, so the inputs need not leave a cluster
            on_block=lambda _, embedding: figures.add(embedding, embedding), scheduler=run.params.SCHEDULER)
    _, embedded = figures.arrays()
    outputs = {"OUTPUT": str(run.output), "METHOD": meta["method"], "COMPONENTS": count,
               # 2nd-98th percentiles: what QGIS's cumulative-cut stretch shows
               "DISPLAY_RANGES": [[float(np.percentile(embedded[:, i], 2)), float(np.percentile(embedded[:, i], 98))]
                                  if len(embedded) else None for i in range(count)]}
    ratio = meta["fit_figures"].get("explained_variance_ratio")
    if ratio:
        outputs["EXPLAINED_VARIANCE"] = ratio
        outputs["TOTAL_EXPLAINED_VARIANCE"] = float(sum(ratio))
        reporter.text("Explained variance: " + ", ".join(f"component {i} {100 * r:.1f} %"
                                                         for i, r in enumerate(ratio, 1))
                      + f"; total {100 * sum(ratio):.1f} %.")
    finalize(partial, run.output, {"tool": "reduction", "iamap_version": __version__, "parameters": params,
                                   "model": meta, "outputs": outputs})
    return outputs
