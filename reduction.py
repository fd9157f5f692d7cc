"""``iamap:reduction``: fewer bands from many (PCA, UMAP and the other scikit-learn decompositions and
manifolds), fitted on a pixel sample and applied to every pixel."""

from __future__ import annotations

import json

from qgis.core import QgsProcessingOutputNumber, QgsProcessingOutputString

from .engine import catalog
from .utils.estimator_algorithm import SHARED_PARAMETER_HELP, EstimatorAlgorithm
from .utils.styles import style_continuous, style_rgb


class ReductionAlgorithm(EstimatorAlgorithm):
    NAME = "reduction"
    DISPLAY_NAME = "Dimension reduction"
    ICON = "reduction"
    TOOL = "reduction"
    METHODS = catalog.REDUCTION_METHODS
    SIZE = ("N_COMPONENTS", "Number of components", 3)
    OUTPUT_LABEL = "Reduced raster"
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
    PARAMETER_HELP = {
        **{k: SHARED_PARAMETER_HELP[k] for k in ("INPUT", "BANDS", "EXTENT")},
        "METHOD": "Estimator class: PCA (default, fast, linear), UMAP (umap-learn; non-linear, slower), or "
                  "another scikit-learn decomposition/manifold.",
        "N_COMPONENTS": "Bands of the output (default 3).",
        **{k: SHARED_PARAMETER_HELP[k] for k in ("LOAD_MODEL", "TRUST_MODEL", "SK_PARAM", "SAMPLE_SIZE",
                                                 "RANDOM_SEED")},
        "OUTPUT": "Reduced raster (GeoTIFF, float32, NaN nodata).",
        "SAVE_MODEL": SHARED_PARAMETER_HELP["SAVE_MODEL"],
    }

    def initAlgorithm(self, config=None):  # noqa: N802
        self.add_shared_parameters()
        self.addOutput(QgsProcessingOutputString("EXPLAINED_VARIANCE", "Explained variance ratio per component "
                                                                       "(JSON list)"))
        self.addOutput(QgsProcessingOutputNumber("TOTAL_EXPLAINED_VARIANCE", "Total explained variance ratio"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        params, _ = self.shared_parameters(parameters, context)
        outputs = self.run_engine("reduction", params, feedback)
        ranges = outputs.get("DISPLAY_RANGES") or []
        if len(ranges) >= 3 and all(ranges[:3]):
            style_rgb(outputs["OUTPUT"], ranges[:3])
        elif ranges and ranges[0]:
            style_continuous(outputs["OUTPUT"], *ranges[0])
        result = {"OUTPUT": outputs["OUTPUT"], **self.saved_model_output(params)}
        if outputs.get("EXPLAINED_VARIANCE"):
            result["EXPLAINED_VARIANCE"] = json.dumps(outputs["EXPLAINED_VARIANCE"])
            result["TOTAL_EXPLAINED_VARIANCE"] = outputs["TOTAL_EXPLAINED_VARIANCE"]
        return result
