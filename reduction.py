"""``iamap:reduction``: fewer bands from many (PCA, UMAP and the other scikit-learn decompositions and
manifolds), fitted on a pixel sample and applied to every pixel."""

from __future__ import annotations

import json

from .engine import catalog, contract
from .utils.estimator_algorithm import EstimatorAlgorithm
from .utils.loading import load_styled
from .utils.styles import style_continuous, style_rgb


class ReductionAlgorithm(EstimatorAlgorithm):
    """``iamap:reduction``: fewer bands from many (engine: :mod:`engine.reduction`)."""

    TOOL = contract.REDUCTION
    DISPLAY_NAME = "Reduce dimensions (PCA...)"
    ICON = "reduction"
    SHORT_DESCRIPTION = "Fewer bands from many: PCA, UMAP or another scikit-learn decomposition"
    TAGS = ("reduction", "dimensionality reduction", "pca", "umap", "tsne", "ica", "nmf", "embedding", "features",
            "scikit-learn")
    HELP = f"""
<p>Reduces the bands of a raster (typically the hundreds of features of iamap:encoder) to a few components:
fitted on a random sample of valid pixels behind a standardisation, then applied to the whole raster block
by block, so memory does not grow with the raster. The output is float32, one band per component, NaN where
the input is nodata; with 3 components or more it opens as an RGB composite of the first three.</p>
<p>{', '.join(catalog.NONNEGATIVE_METHODS)} need non-negative input: they get a 0-1 scaling instead of
standardisation. {', '.join(catalog.REDUCTION_TRANSDUCTIVE)} cannot transform pixels outside the fitted
sample: every other pixel gets the distance-weighted average embedding of its nearest sampled pixels (the log
says so).</p>
<p>The explained variance of PCA-like methods is written to the log and returned as EXPLAINED_VARIANCE.</p>"""

    def process(self, parameters, context, feedback):
        outputs, result = self.fit_and_apply(parameters, context, feedback)
        ranges = outputs.get("DISPLAY_RANGES") or []
        if len(ranges) >= 3 and all(ranges[:3]):
            style_rgb(outputs["OUTPUT"], ranges[:3])
        elif ranges and ranges[0]:
            style_continuous(outputs["OUTPUT"], *ranges[0])
        load_styled(context, outputs["OUTPUT"], f"{self.input_name(parameters, context)} {outputs['METHOD']} "
                                                 f"({outputs['COMPONENTS']} components)")
        if outputs.get("EXPLAINED_VARIANCE"):
            result["EXPLAINED_VARIANCE"] = json.dumps(outputs["EXPLAINED_VARIANCE"])
            result["TOTAL_EXPLAINED_VARIANCE"] = outputs["TOTAL_EXPLAINED_VARIANCE"]
        return result
