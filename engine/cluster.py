"""The cluster tool: fit a clusterer (KMeans, HDBSCAN...) on a pixel sample, then label every pixel, block by
block, into an int16 raster.

Labels are 0, 1, 2...; ``NOISE`` (-1) marks pixels that HDBSCAN, DBSCAN or OPTICS leave out of every
cluster; ``NODATA`` marks pixels that were nodata in the input. They never mix.
"""

from __future__ import annotations

import numpy as np

from . import __version__
from .blockwise import apply_to_raster
from .catalog import NODATA_LABEL, NOISE_LABEL
from .errors import ParameterError
from .estimator_run import estimator_run
from .pixel_functions import PixelFunction
from .polygons import check_polygons_path, every_value, tool_polygons
from .raster_writing import finalize
from .sampling import RunningSample

NOISE, NODATA = NOISE_LABEL, NODATA_LABEL
#: Pixels kept from the block-wise pass for the silhouette score (its cost grows with the square of this).
SILHOUETTE_SAMPLE = 10_000


def run_cluster(params: dict, reporter) -> dict:
    """The cluster tool: fit (or load) a clusterer on a pixel sample and write the label raster.

    Returns the outputs sent in the worker's ``result`` event."""
    check_polygons_path(params.get("OUTPUT_POLYGONS") or "")
    with estimator_run("cluster", params, reporter) as run:
        meta, model = run.metadata, run.model
        if meta["fit_figures"]["max_label"] >= np.iinfo(np.int16).max:
            raise ParameterError("SK_PARAM", f"{meta['method']} found {meta['fit_figures']['max_label'] + 1} "
                                             f"clusters, more than a label raster holds; change its parameters.")
        sizes: dict[int, int] = {}
        figures = RunningSample(SILHOUETTE_SAMPLE, run.window.width * run.window.height, run.params.RANDOM_SEED)

        def count_labels(inputs, labels):
            figures.add(inputs, labels)
            for label, n in zip(*np.unique(labels, return_counts=True)):
                sizes[int(label)] = sizes.get(int(label), 0) + int(n)

        partial = apply_to_raster(
            run.src, run.bands, run.window, run.output, 1, "int16", NODATA,
            PixelFunction("apply_fitted", (model, "int16")), run.reporter,
            descriptions=[f"{meta['method']} cluster"],
            tags={"IAMAP_TOOL": "cluster", "IAMAP_VERSION": __version__, "METHOD": meta["method"],
                  "NOISE_LABEL": NOISE}, on_block=count_labels,
            # the silhouette score needs a sample of the inputs: on a cluster they travel back with the labels
            scheduler=run.params.SCHEDULER, with_inputs=True)
    clusters = {k: v for k, v in sorted(sizes.items()) if k != NOISE}
    outputs = {"OUTPUT": str(run.output), "METHOD": meta["method"], "CLUSTERS": len(clusters),
               "CLUSTER_SIZES": clusters, "NOISE_PIXELS": sizes.get(NOISE, 0),
               "INERTIA": meta["fit_figures"]["inertia"], "SILHOUETTE": silhouette(model, *figures.arrays(),
                                                                                     run.params.RANDOM_SEED)}
    total = sum(sizes.values())
    reporter.text(f"{len(clusters)} cluster(s); pixels per cluster: "
                  + ", ".join(f"{k}: {v} ({100 * v / total:.1f} %)" for k, v in clusters.items())
                  + (f"; noise: {outputs['NOISE_PIXELS']} ({100 * outputs['NOISE_PIXELS'] / total:.1f} %)"
                     if outputs["NOISE_PIXELS"] else "") + ".")
    reporter.text(f"Inertia (within-cluster sum of squares of the standardised fit sample): "
                  f"{outputs['INERTIA']:.6g}. Silhouette score on {SILHOUETTE_SAMPLE} pixels at most: "
                  + ("not defined (fewer than 2 clusters)." if outputs["SILHOUETTE"] is None
                     else f"{outputs['SILHOUETTE']:.3f} (-1 to 1, higher is better separated)."))
    finalize(partial, run.output, {"tool": "cluster", "iamap_version": __version__, "parameters": params,
                                   "model": meta, "outputs": outputs})
    if run.params.OUTPUT_POLYGONS:
        names = {label: "noise" if label == NOISE else f"cluster {label}" for label in sizes}
        polygons = tool_polygons(run.params, params, run.output, every_value(), names, reporter.stage(100, 100))
        outputs.update(OUTPUT_POLYGONS=polygons["OUTPUT_POLYGONS"], POLYGONS=polygons["POLYGONS"])
    return outputs


def silhouette(model: dict, inputs: np.ndarray, labels: np.ndarray, seed: int) -> float | None:
    """Silhouette score of ``labels`` in the model's scaled space, noise left out; None below 2 clusters."""
    # deferred: scikit-learn (about a second) loads when a model is fitted or applied, after the parameter checks
    from sklearn.metrics import silhouette_score

    clustered = labels != NOISE
    inputs, labels = inputs[clustered], labels[clustered]
    if len(np.unique(labels)) < 2 or len(labels) <= len(np.unique(labels)):
        return None
    scaled = model["pipeline"][0].transform(inputs)
    return float(silhouette_score(scaled, labels, sample_size=min(len(labels), SILHOUETTE_SAMPLE), random_state=seed))
