"""Parameters several tools declare alike, and the file suffixes they name."""

from __future__ import annotations

from .schema import Kind, Parameter


def advanced(*parameters: Parameter) -> tuple[Parameter, ...]:
    """``parameters`` shown under “Advanced parameters” in the dialog."""
    return tuple(Parameter(**{**p.__dict__, "advanced": True}) for p in parameters)


MODEL_SUFFIX = ".iamapmodel"
MODEL_FILTER = f"IAMAP model (*{MODEL_SUFFIX})"
CHECKPOINT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".ckpt")


def input_raster(help_text: str, label: str = "Input raster") -> Parameter:
    """The INPUT raster parameter."""
    return Parameter("INPUT", label, Kind.RASTER, help=help_text)


def bands(help_text: str = "Bands used as the pixel vector (default: all).") -> Parameter:
    """The BANDS parameter of the INPUT raster."""
    return Parameter("BANDS", "Bands (default: all)", Kind.BANDS, optional=True, parent="INPUT", help=help_text)


def extent(help_text: str) -> Parameter:
    """The EXTENT parameter."""
    return Parameter("EXTENT", "Extent (default: whole raster)", Kind.EXTENT, optional=True, help=help_text)


def trust_model() -> Parameter:
    """The TRUST_MODEL parameter of the tools that load models."""
    return Parameter("TRUST_MODEL", "Trust this model file (it may run code)", Kind.BOOL, False,
                     help="Load a LOAD_MODEL file that is not a plain IAMAP model (an older pickle, or one holding "
                          "objects outside IAMAP's list of safe types): it may run code from the file. Only for files "
                          "you made yourself. The log names the file, its SHA-256 and what was trusted.")


def scheduler() -> Parameter:
    """The SCHEDULER parameter of the tools that can run on a Dask cluster."""
    return Parameter("SCHEDULER", "Dask scheduler (empty = this machine)", Kind.STRING, "", optional=True,
                     advanced=True,
                     help="Address of a running Dask scheduler (tcp://host:8786) whose workers do the heavy step "
                          "(encoding the tiles, mapping every pixel), for the same output as on this machine; empty = "
                          "this machine. Start it with \u201cdask scheduler\u201d, then on each machine "
                          "\u201cdask worker tcp://host:8786\u201d (GPU workers: one per GPU with \u201c--resources "
                          "GPU=1\u201d), each with the plugin folder installed by \u201cpip install\u201d. The "
                          "input raster (and CKPT) must be readable by every worker at the same path (a shared "
                          "disk); fitted models are sent to the workers; the output is written on this machine.")


#: The largest RANDOM_SEED: QGIS's integer parameters hold 32-bit signed numbers (scikit-learn takes up to 2**32 - 1).
SEED_MAXIMUM = 2**31 - 1
RANDOM_SEED_HELP = ("Seed of the random sample and of the method: the same seed gives the same result. With a seed "
                    "UMAP runs on one core.")


def polygon_parameters(what: str) -> tuple[Parameter, ...]:
    """MIN_AREA, SIMPLIFY (advanced) and OUTPUT_POLYGONS: the raster's ``what`` (its classes, its mask) as
    polygons (:mod:`engine.polygons`), written only when OUTPUT_POLYGONS is given."""
    return (*advanced(
        Parameter("MIN_AREA", "Smallest polygon kept (area, CRS units)", Kind.FLOAT, 0.0, minimum=0,
                  help="Polygons of OUTPUT_POLYGONS smaller than this area, in the square of the raster's CRS unit "
                       "(m\u00b2 when it is projected), are left out; 0 keeps every one (a single pixel too)."),
        Parameter("SIMPLIFY", "Simplify polygon outlines (tolerance, CRS units)", Kind.FLOAT, 0.0, minimum=0,
                  help="Douglas-Peucker tolerance of OUTPUT_POLYGONS' outlines, in the raster's CRS unit, topology "
                       "of each polygon kept; 0 keeps the exact pixel edges (areas then equal the raster's "
                       "exactly). Neighbouring polygons are simplified each on its own, so their shared edges may "
                       "no longer match.")),
        Parameter("OUTPUT_POLYGONS", f"{what} as polygons", Kind.VECTOR_DESTINATION, "", optional=True,
                  geometry="polygon",
                  help=f"{what} as polygons (GeoPackage by default; also .geojson or .fgb), one per connected region "
                       "of one class, with its class_value, class_name, area (with area_unit: m\u00b2 when the CRS "
                       "is projected), the source raster's name, the tool and its parameters. Made strip by strip "
                       "without seams: a region is one polygon, however many strips it spans."))
