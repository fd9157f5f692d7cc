"""reduction and cluster: the tools that fit an estimator on a pixel sample."""

from __future__ import annotations

from .. import catalog
from .schema import Kind, Output, Parameter, Tool
from .shared import (MODEL_FILTER, MODEL_SUFFIX, RANDOM_SEED_HELP, SEED_MAXIMUM, advanced, bands, extent,
                     input_raster, polygon_parameters, scheduler, trust_model)


def estimator_tool(name: str, methods: tuple[str, ...], method_help: str, size: Parameter, output_label: str,
                   output_help: str, outputs: tuple[Output, ...], more: tuple[Parameter, ...] = ()) -> Tool:
    """An estimator tool's declaration: its METHOD choices, its size parameter (:attr:`Tool.size_parameter`),
    its output raster and figures, and ``more`` parameters of its own at the end; the other parameters are the
    same for every such tool."""
    return Tool(name, (
        input_raster("Raster to work on: a feature raster from iamap:encoder, or any raster (raw bands too)."),
        bands(),
        extent("Only process this area (any CRS). Default: the whole raster."),
        Parameter("METHOD", "Method", Kind.ENUM, methods[0], choices=methods, help=method_help),
        size,
        # any file is accepted by the dialog, so that an older or foreign file gets the engine's explanation
        Parameter("LOAD_MODEL", "Apply a saved model instead of fitting", Kind.FILE, "", optional=True,
                  file_filter=f"{MODEL_FILTER};;All files (*)",
                  help=f"Apply a model saved by SAVE_MODEL (a {MODEL_SUFFIX} file) instead of fitting: METHOD, "
                       f"SK_PARAM, SAMPLE_SIZE and {size.name} then come from the model, and the band count must "
                       "match. Model files hold data only; other files (pickles, such as older .joblib models) are "
                       "refused, since loading one runs code from it, unless TRUST_MODEL is set (see "
                       "docs/security.md)."),
        *advanced(
            Parameter("SK_PARAM", "Method parameters (JSON)", Kind.STRING, "", optional=True,
                      help='Extra keyword arguments of the method as a JSON object, e.g. {"max_iter": 500}. An '
                           "unknown keyword is an error that lists the valid ones. They override IAMAP's defaults."),
            Parameter("SAMPLE_SIZE", "Pixels sampled to fit", Kind.INT, 100_000, minimum=2,
                      help="Valid pixels drawn at random to fit the method; every "
                           "pixel is then transformed block by block, so the raster size does not matter. Methods "
                           "whose cost grows with the square of the sample use fewer (the log says how many)."),
            Parameter("RANDOM_SEED", "Random seed", Kind.INT, 0, minimum=0, maximum=SEED_MAXIMUM,
                      help=RANDOM_SEED_HELP),
            trust_model(),
            scheduler(),
        ),
        Parameter("OUTPUT", output_label, Kind.RASTER_DESTINATION, help=output_help),
        Parameter("SAVE_MODEL", "Save the fitted model", Kind.FILE_DESTINATION, "", optional=True,
                  file_filter=MODEL_FILTER,
                  help=f"Save the fitted scaler and estimator ({MODEL_SUFFIX}: data only, with a record of method, "
                       "parameters, bands and software versions) to apply them to other rasters with LOAD_MODEL. "
                       "Saved before the raster is written, so a cancelled run can go on with LOAD_MODEL without "
                       "fitting again."),
        *more,
    ), outputs, size.name)


REDUCTION = estimator_tool(
    "reduction", catalog.REDUCTION_METHODS,
    "Estimator class: PCA (default, fast, linear), UMAP (umap-learn; non-linear, slower), or another scikit-learn "
    "decomposition/manifold.",
    Parameter("N_COMPONENTS", "Number of components", Kind.INT, 3, minimum=1, help="Bands of the output."),
    "Reduced raster", "Reduced raster (GeoTIFF, float32, NaN nodata).",
    (Output("EXPLAINED_VARIANCE", "Explained variance ratio per component (JSON list)", "string"),
     Output("TOTAL_EXPLAINED_VARIANCE", "Total explained variance ratio")))

CLUSTER = estimator_tool(
    "cluster", catalog.CLUSTER_METHODS,
    "Estimator class: KMeans (default), HDBSCAN (finds the number of clusters itself and marks noise), or another "
    "scikit-learn clusterer.",
    Parameter("N_CLUSTERS", "Number of clusters", Kind.INT, 8, minimum=1,
              help="Number of clusters for the methods that take one (KMeans, Birch, GaussianMixture...). "
                   "HDBSCAN, DBSCAN, OPTICS, MeanShift and AffinityPropagation find it themselves. For HDBSCAN "
                   "IAMAP sets min_cluster_size to 0.5 % of the sample and min_samples to 10 unless SK_PARAM sets "
                   "them."),
    "Clusters", f"Cluster raster (GeoTIFF, int16, nodata {catalog.NODATA_LABEL}, noise {catalog.NOISE_LABEL}), with a "
                "paletted style.",
    (Output("CLUSTERS", "Number of clusters found"),
     Output("CLUSTER_SIZES", "Pixels per cluster (JSON object)", "string"),
     Output("NOISE_PIXELS", "Noise pixels"), Output("INERTIA", "Inertia"), Output("SILHOUETTE", "Silhouette score"),
     Output("POLYGONS", "Polygons written to OUTPUT_POLYGONS")),
    polygon_parameters("Clusters"))
