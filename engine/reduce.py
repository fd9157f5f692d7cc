"""The reduction tool: fit a decomposition or manifold (PCA, UMAP...) on a pixel sample, then write every
pixel's embedding, block by block: float32, one band per component, NaN where the input is nodata."""

from __future__ import annotations

import numpy as np

from . import __version__
from .blockwise import apply_to_raster
from .estimators import EstimatorParams, apply_model, prepare_model
from .rasters import check_bands, check_output, extent_window, finalize, open_raster
from .sampling import RunningSample

#: Pixels kept from the block-wise pass to set the display range of each component.
FIGURE_SAMPLE = 20_000


def run_reduction(params: dict, reporter) -> dict:
    p = EstimatorParams.from_dict(params, "reduction")
    output = check_output(p.OUTPUT)
    with open_raster(p.INPUT) as src:
        bands = check_bands(src, p.BANDS)
        window = extent_window(src, p.EXTENT)
        model, stage = prepare_model("reduction", p, src, bands, window, reporter)
        meta = model["metadata"]
        count = meta["fit_figures"]["output_count"]
        figures = RunningSample(FIGURE_SAMPLE, window.width * window.height, p.RANDOM_SEED)
        partial = apply_to_raster(
            src, bands, window, output, count, "float32", float("nan"),
            lambda pixels: apply_model(model, pixels).astype(np.float32), stage,
            descriptions=[f"{meta['method']} component {i}" for i in range(1, count + 1)],
            tags={"IAMAP_TOOL": "reduction", "IAMAP_VERSION": __version__, "METHOD": meta["method"]},
            on_block=figures.add)
    _, embedded = figures.arrays()
    outputs = {"OUTPUT": str(output), "METHOD": meta["method"], "COMPONENTS": count,
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
    finalize(partial, output, {"tool": "reduction", "iamap_version": __version__, "parameters": params,
                               "model": meta, "outputs": outputs})
    return outputs
