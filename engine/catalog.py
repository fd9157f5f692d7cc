"""Static lists shared by the QGIS side and the engine: curated backbones and estimator names.

Standard library only. The QGIS side builds its enum parameters from these lists (QGIS cannot import timm
or scikit-learn); the engine tests check that every name here really exists in the pinned libraries.
"""

from __future__ import annotations

import colorsys
import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class CuratedBackbone:
    """A curated model of the ``BACKBONE`` enum.

    Attributes
    ----------
    key : str
        The value used from the command line (``BACKBONE=vit_small_patch16_224.dino``).
    label : str
        What the toolbox shows.
    timm_name : str
        The timm architecture (and pretrained tag) to create.
    img_size : int or None
        Model input size to create the model with, where the timm default is needlessly large on a CPU
        (DINOv2 defaults to 518); position embeddings are resampled by timm.
    torchgeo_weights : str or None
        ``"ViTSmall16_Weights.SENTINEL2_ALL_DINO"``: weights from TorchGeo instead of timm's hub.
    """

    key: str
    label: str
    timm_name: str
    img_size: int | None = None
    torchgeo_weights: str | None = None
    notes: str = field(default="", compare=False)

    @property
    def patch(self) -> int:
        """Input pixels per side of the model's patch (the 14 of ViT-S/14), as the timm name says."""
        return int(re.search(r"patch(\d+)", self.timm_name).group(1))

    @property
    def input_size(self) -> int:
        """Side of the model's input in pixels: ``img_size``, else the size the timm name ends in (224)."""
        sized = re.search(r"patch\d+_(\d+)", self.timm_name)
        return self.img_size or (int(sized.group(1)) if sized else 224)

    def cell_pixels(self, tile_size: int) -> float:
        """Input pixels per side of one output pixel (feature cell) for tiles of ``tile_size`` pixels: the tile is
        resized to :attr:`input_size`, which the model cuts into patches of :attr:`patch` pixels."""
        return tile_size * self.patch / self.input_size


BACKBONES: tuple[CuratedBackbone, ...] = (
    CuratedBackbone("vit_small_patch14_reg4_dinov2.lvd142m",
                    "DINOv2 ViT-S/14 with registers: 22 M parameters, the best general-purpose features of the small "
                    "models, clean maps (default)",
                    "vit_small_patch14_reg4_dinov2.lvd142m", img_size=224),
    CuratedBackbone("vit_small_patch14_dinov2.lvd142m", "DINOv2 ViT-S/14: 22 M parameters, general purpose",
                    "vit_small_patch14_dinov2.lvd142m", img_size=224),
    CuratedBackbone("vit_small_patch16_dinov3.lvd1689m", "DINOv3 ViT-S/16: 22 M parameters, the newest DINO",
                    "vit_small_patch16_dinov3.lvd1689m", img_size=224),
    CuratedBackbone("vit_small_patch16_224.dino", "DINO ViT-S/16: 22 M parameters, the original DINO",
                    "vit_small_patch16_224.dino"),
    CuratedBackbone("vit_base_patch16_224.dino",
                    "DINO ViT-B/16: 86 M parameters, richer features, about 4 x slower than ViT-S",
                    "vit_base_patch16_224.dino"),
    CuratedBackbone("vit_base_patch16_224.mae",
                    "MAE ViT-B/16: 86 M parameters, trained to reconstruct images (less separable features)",
                    "vit_base_patch16_224.mae"),
    CuratedBackbone("vit_tiny_patch16_224.augreg_in21k",
                    "ViT-Tiny/16 (ImageNet-21k): 6 M parameters, the fastest, for low-RAM CPUs",
                    "vit_tiny_patch16_224.augreg_in21k"),
    CuratedBackbone("ssl4eo_s12_vit_small_patch16_224.sentinel2_all_dino",
                    "SSL4EO-S12 Sentinel-2 ViT-S/16 DINO (TorchGeo): 22 M parameters, 13 Sentinel-2 bands",
                    "vit_small_patch16_224", torchgeo_weights="ViTSmall16_Weights.SENTINEL2_ALL_DINO",
                    notes="expects the 13 Sentinel-2 L1C bands in order B1..B12 with B8A, reflectance x 10000"),
    CuratedBackbone("ssl4eo_s12_vit_small_patch16_224.sentinel2_all_moco",
                    "SSL4EO-S12 Sentinel-2 ViT-S/16 MoCo (TorchGeo): 22 M parameters, 13 Sentinel-2 bands",
                    "vit_small_patch16_224", torchgeo_weights="ViTSmall16_Weights.SENTINEL2_ALL_MOCO",
                    notes="expects the 13 Sentinel-2 L1C bands in order B1..B12 with B8A, reflectance x 10000"),
)
BACKBONE_KEYS = tuple(b.key for b in BACKBONES)


def backbone(key: str) -> CuratedBackbone | None:
    """The curated backbone of ``key``, or None for any other model name."""
    return next((b for b in BACKBONES if b.key == key), None)


DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: How the encoder runs its model (RUNTIME); the table of conditions is engine.runtimes.RUNTIMES.
RUNTIMES = ("auto", "openvino", "torch")
#: How overlapping tiles are merged; see engine.merge.
MERGE_METHODS = ("average", "first", "last", "min", "max", "centre", "cosine")
#: How pixel values are scaled before the model; see engine.normalize.
NORMALIZATIONS = ("auto", "model", "dataset", "none")


@dataclass(frozen=True)
class OutputFormat:
    """How the encoder stores its feature raster (``OUTPUT_FORMAT``): GeoTIFF creation options."""

    key: str
    label: str
    options: dict


#: sparse_ok: blocks not written yet take no space and read as nodata (GDAL would otherwise fill the whole file
#: with NaN blocks when it is created, gigabytes for a large uncompressed output)
_FEATURE_TIFF = {"driver": "GTiff", "tiled": True, "blockxsize": 256, "blockysize": 16, "interleave": "pixel",
                 "bigtiff": "if_safer", "sparse_ok": True}
#: Measured with benchmarks/encoder_benchmark.py --formats (the closing note of the pipeline issue and the FAQ
#: give the figures): features are noisy floats that compress poorly (float32 deflate or zstd saves about 10 %)
#: while compressing costs more than the model's forward on a fast device, so the default is uncompressed;
#: float16 halves the file for a relative error under 0.1 % (GDAL truncates to 11 significant bits).
OUTPUT_FORMATS = {f.key: f for f in (
    OutputFormat("float32", "Float32, uncompressed (fastest; default)", dict(_FEATURE_TIFF, compress="none")),
    OutputFormat("float32_zstd", "Float32, ZSTD-compressed (lossless, slower)",
                 dict(_FEATURE_TIFF, compress="zstd", zstd_level=1, predictor=3)),
    OutputFormat("float32_deflate", "Float32, DEFLATE-compressed (lossless, slowest, readable by any GDAL)",
                 dict(_FEATURE_TIFF, compress="deflate", zlevel=1, predictor=3)),
    OutputFormat("float16", "Float16 (half the size; about 3 significant digits)", dict(_FEATURE_TIFF, compress="none",
                                                                                        nbits=16)),
    OutputFormat("float16_zstd", "Float16, ZSTD-compressed (smallest)",
                 dict(_FEATURE_TIFF, compress="zstd", zstd_level=1, nbits=16, predictor=3)),
)}

#: scikit-learn decompositions and manifolds that share the fit/transform API, plus UMAP (umap-learn).
#: Methods in REDUCTION_TRANSDUCTIVE cannot transform new points: fitted on the sample, the rest of the
#: pixels get the embedding of their nearest sampled neighbours.
REDUCTION_METHODS = (
    "PCA", "UMAP", "IncrementalPCA", "KernelPCA", "TruncatedSVD", "FastICA", "FactorAnalysis", "NMF",
    "MiniBatchNMF", "SparsePCA", "MiniBatchSparsePCA", "MiniBatchDictionaryLearning",
    "LatentDirichletAllocation", "Isomap", "LocallyLinearEmbedding", "SpectralEmbedding", "TSNE", "MDS",
)
REDUCTION_TRANSDUCTIVE = ("SpectralEmbedding", "TSNE", "MDS")
#: Methods that need non-negative input: scaled to [0, 1] instead of standardised.
NONNEGATIVE_METHODS = ("NMF", "MiniBatchNMF", "LatentDirichletAllocation")

#: scikit-learn clusterers (and GaussianMixture) with the common API, plus HDBSCAN (hdbscan package).
CLUSTER_METHODS = (
    "KMeans", "HDBSCAN", "MiniBatchKMeans", "BisectingKMeans", "Birch", "GaussianMixture", "MeanShift",
    "AffinityPropagation", "DBSCAN", "OPTICS", "AgglomerativeClustering", "SpectralClustering",
)
CLUSTER_TRANSDUCTIVE = ("DBSCAN", "OPTICS", "AgglomerativeClustering", "SpectralClustering")
#: Labels of the cluster raster (int16) besides 0, 1, 2...: noise of HDBSCAN/DBSCAN/OPTICS, and input nodata.
NOISE_LABEL = -1
NODATA_LABEL = -32768

#: Methods whose fit needs memory or time growing with the square of the sample: fitted on at most this many
#: pixels whatever SAMPLE_SIZE says (the log warns). 10 000 pixels -> an 800 MB float64 distance matrix.
FIT_SAMPLE_LIMITS = {
    "KernelPCA": 10_000, "Isomap": 10_000, "LocallyLinearEmbedding": 10_000, "SpectralEmbedding": 10_000,
    "MDS": 5_000, "TSNE": 20_000,
    "AffinityPropagation": 5_000, "MeanShift": 20_000, "AgglomerativeClustering": 10_000,
    "SpectralClustering": 10_000, "OPTICS": 20_000, "DBSCAN": 50_000,
}
#: Above this many bands hdbscan switches to an exact O(n^2) minimum spanning tree (Prim's algorithm): the fit
#: sample is capped, and the log advises reducing the bands first.
HDBSCAN_HIGH_DIMENSIONS = 60
HDBSCAN_HIGH_DIMENSION_LIMIT = 20_000

#: Supervised estimators of iamap:ml (scikit-learn ensembles and neighbours, plus linear, SVM, naive Bayes,
#: discriminant, tree and MLP models): whether a method classifies or regresses follows from the estimator.
ML_CLASSIFIERS = (
    "RandomForestClassifier", "ExtraTreesClassifier", "HistGradientBoostingClassifier", "GradientBoostingClassifier",
    "AdaBoostClassifier", "BaggingClassifier", "KNeighborsClassifier", "RadiusNeighborsClassifier", "NearestCentroid",
    "LogisticRegression", "RidgeClassifier", "SGDClassifier", "LinearSVC", "SVC", "MLPClassifier", "GaussianNB",
    "LinearDiscriminantAnalysis", "DecisionTreeClassifier",
)
ML_REGRESSORS = (
    "RandomForestRegressor", "ExtraTreesRegressor", "HistGradientBoostingRegressor", "GradientBoostingRegressor",
    "AdaBoostRegressor", "BaggingRegressor", "KNeighborsRegressor", "RadiusNeighborsRegressor", "LinearRegression",
    "Ridge", "Lasso", "ElasticNet", "SGDRegressor", "LinearSVR", "SVR", "MLPRegressor", "DecisionTreeRegressor",
)
ML_METHODS = ML_CLASSIFIERS + ML_REGRESSORS
#: How iamap:ml validates: none, k-fold over pixels, stratified k-fold, k-fold by feature (a polygon's pixels stay
#: together), k-fold by spatial block, or folds read from a field.
CV_METHODS = ("group", "spatial", "stratified", "kfold", "column", "none")

#: Distinct colours of the first classes and clusters (then hues spread by the golden angle): the QGIS styles,
#: the class raster's colour table and the ml report use the same colour for the same class.
CLASS_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22",
                 "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2")
NOISE_COLOUR = "#d9d9d9"


def class_colour(index: int) -> str:
    """The colour (``#rrggbb``) of the ``index``-th class or cluster."""
    if 0 <= index < len(CLASS_COLOURS):
        return CLASS_COLOURS[index]
    red, green, blue = colorsys.hsv_to_rgb((index * 0.618034) % 1.0, 0.65, 0.9)
    return "#{:02x}{:02x}{:02x}".format(*(round(255 * c) for c in (red, green, blue)))
