"""``iamap:cluster``: unsupervised classes from pixel vectors (KMeans, HDBSCAN and the other scikit-learn
clusterers), fitted on a pixel sample and applied to every pixel."""

from __future__ import annotations

import json

from qgis.core import QgsProcessingOutputNumber, QgsProcessingOutputString

from .engine import catalog
from .utils.estimator_algorithm import SHARED_PARAMETER_HELP, EstimatorAlgorithm
from .utils.styles import style_paletted


class ClusterAlgorithm(EstimatorAlgorithm):
    NAME = "cluster"
    DISPLAY_NAME = "Clustering"
    ICON = "cluster"
    TOOL = "cluster"
    METHODS = catalog.CLUSTER_METHODS
    SIZE = ("N_CLUSTERS", "Number of clusters", 8)
    OUTPUT_LABEL = "Clusters"
    HELP = f"""
<p>Groups pixels into clusters from their vectors (typically the features of iamap:encoder, or the output of
iamap:reduction): fitted on a random sample of valid pixels behind a standardisation, then every pixel is
labelled block by block, so memory does not grow with the raster. The output is an int16 raster of labels 0,
1, 2..., opened with one colour per cluster; nodata pixels stay nodata (-32768) and the noise of HDBSCAN,
DBSCAN and OPTICS is the separate label -1.</p>
<p>HDBSCAN (hdbscan package) labels the pixels outside the sample with its approximate_predict. On more than
60 bands it is slow (fitted on 20000 pixels at most, and labelling runs at a few hundred pixels per second):
reduce the features first (iamap:reduction, PCA to about 16 components).
{', '.join(catalog.CLUSTER_TRANSDUCTIVE)} cannot label new points: every pixel outside the fitted sample
gets the distance-weighted majority label of its nearest sampled pixels (the log says so).</p>
<p>Figures in the log and as outputs: pixels per cluster, inertia (within-cluster sum of squares of the
standardised fit sample) and the silhouette score of up to 10000 labelled pixels.</p>"""
    PARAMETER_HELP = {
        **{k: SHARED_PARAMETER_HELP[k] for k in ("INPUT", "BANDS", "EXTENT")},
        "METHOD": "Estimator class: KMeans (default), HDBSCAN (finds the number of clusters itself and marks "
                  "noise), or another scikit-learn clusterer.",
        "N_CLUSTERS": "Number of clusters (default 8) for the methods that take one (KMeans, Birch, "
                      "GaussianMixture...). HDBSCAN, DBSCAN, OPTICS, MeanShift and AffinityPropagation find it "
                      "themselves. For HDBSCAN IAMAP sets min_cluster_size to 0.5 % of the sample and "
                      "min_samples to 10 unless SK_PARAM sets them.",
        **{k: SHARED_PARAMETER_HELP[k] for k in ("LOAD_MODEL", "TRUST_MODEL", "SK_PARAM", "SAMPLE_SIZE",
                                                 "RANDOM_SEED")},
        "OUTPUT": "Cluster raster (GeoTIFF, int16, nodata -32768, noise -1), with a paletted style.",
        "SAVE_MODEL": SHARED_PARAMETER_HELP["SAVE_MODEL"],
    }

    def initAlgorithm(self, config=None):  # noqa: N802
        self.add_shared_parameters()
        self.addOutput(QgsProcessingOutputNumber("CLUSTERS", "Number of clusters found"))
        self.addOutput(QgsProcessingOutputString("CLUSTER_SIZES", "Pixels per cluster (JSON object)"))
        self.addOutput(QgsProcessingOutputNumber("NOISE_PIXELS", "Noise pixels"))
        self.addOutput(QgsProcessingOutputNumber("INERTIA", "Inertia"))
        self.addOutput(QgsProcessingOutputNumber("SILHOUETTE", "Silhouette score"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        params, _ = self.shared_parameters(parameters, context)
        outputs = self.run_engine("cluster", params, feedback)
        sizes = {int(k): v for k, v in outputs["CLUSTER_SIZES"].items()}
        style_paletted(outputs["OUTPUT"], sorted(sizes), catalog.NOISE_LABEL if outputs.get("NOISE_PIXELS") else None)
        result = {"OUTPUT": outputs["OUTPUT"], "CLUSTERS": outputs["CLUSTERS"], "CLUSTER_SIZES": json.dumps(sizes),
                  "NOISE_PIXELS": outputs["NOISE_PIXELS"], "INERTIA": outputs["INERTIA"],
                  **self.saved_model_output(params)}
        if outputs.get("SILHOUETTE") is not None:
            result["SILHOUETTE"] = outputs["SILHOUETTE"]
        return result
