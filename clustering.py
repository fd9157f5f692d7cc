"""``iamap:cluster``: unsupervised classes from pixel vectors (KMeans, HDBSCAN and the other scikit-learn
clusterers), fitted on a pixel sample and applied to every pixel."""

from __future__ import annotations

import json

from .engine import catalog, contract
from .utils.estimator_algorithm import EstimatorAlgorithm
from .utils.loading import load_styled, polygon_results
from .utils.styles import raster_classes, style_paletted


class ClusterAlgorithm(EstimatorAlgorithm):
    """``iamap:cluster``: cluster the pixel vectors of a raster (engine: :mod:`engine.cluster`)."""

    TOOL = contract.CLUSTER
    DISPLAY_NAME = "Cluster pixels (KMeans...)"
    ICON = "cluster"
    SHORT_DESCRIPTION = "Unsupervised classes from pixel vectors: KMeans, HDBSCAN or another scikit-learn clusterer"
    TAGS = ("cluster", "clustering", "kmeans", "k-means", "hdbscan", "dbscan", "unsupervised", "classification",
            "segmentation", "scikit-learn")
    HELP = f"""
<p>Groups pixels into clusters from their vectors (typically the features of iamap:encoder, or the output of
iamap:reduction): fitted on a random sample of valid pixels behind a standardisation, then every pixel is
labelled block by block, so memory does not grow with the raster. The output is an int16 raster of labels 0,
1, 2..., opened with one colour per cluster; nodata pixels stay nodata (-32768) and the noise of HDBSCAN,
DBSCAN and OPTICS is the separate label -1.</p>
<p>HDBSCAN (hdbscan package) labels the pixels outside the sample as its approximate_predict does (the same
labels, computed for all pixels at once: about 90 000 to 700 000 pixels per second on 2 cores with 3 to 16
bands). On more than 60 bands it is slow (fitted on 20000 pixels at most, about 6 minutes on 384 bands, then
about 7000 pixels per second): reduce the features first (iamap:reduction, PCA to about 16 components).
{', '.join(catalog.CLUSTER_TRANSDUCTIVE)} cannot label new points: every pixel outside the fitted sample
gets the distance-weighted majority label of its nearest sampled pixels (the log says so).</p>
<p>Figures in the log and as outputs: pixels per cluster, inertia (within-cluster sum of squares of the
standardised fit sample) and the silhouette score of up to 10000 labelled pixels.</p>"""

    def process(self, parameters, context, feedback):
        outputs, files = self.fit_and_apply(parameters, context, feedback)
        sizes = {int(k): v for k, v in outputs["CLUSTER_SIZES"].items()}
        style_paletted(outputs["OUTPUT"], sorted(sizes), catalog.NOISE_LABEL if outputs.get("NOISE_PIXELS") else None)
        name = f"{self.input_name(parameters, context)} {outputs['METHOD']} ({outputs['CLUSTERS']} clusters)"
        load_styled(context, outputs["OUTPUT"], name)
        result = {**files, "CLUSTERS": outputs["CLUSTERS"], "CLUSTER_SIZES": json.dumps(sizes),
                  "NOISE_PIXELS": outputs["NOISE_PIXELS"], "INERTIA": outputs["INERTIA"],
                  **polygon_results(context, outputs, raster_classes(outputs["OUTPUT"]), f"{name} polygons")}
        if outputs.get("SILHOUETTE") is not None:
            result["SILHOUETTE"] = outputs["SILHOUETTE"]
        return result
