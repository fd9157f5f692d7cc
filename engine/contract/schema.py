"""The contract's types: what a tool, a parameter, an output and a worker event are."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class EventKind(str, Enum):
    """The ``type`` of each JSON line the worker writes (see :mod:`engine.events`)."""

    PROGRESS = "progress"
    TEXT = "text"
    WARNING = "warning"
    ERROR = "error"
    RESULT = "result"


class Kind(str, Enum):
    """What a parameter holds; decides its QGIS widget and how the engine reads its value."""

    RASTER = "raster"  #: input raster file
    RASTERS = "rasters"  #: input raster files, one or more (a list)
    BANDS = "bands"  #: 1-based band numbers of the raster parameter named by ``parent``; None = all
    EXTENT = "extent"  #: [xmin, ymin, xmax, ymax] in the input raster's CRS; None = the whole raster
    VECTOR = "vector"  #: input vector file (any geometry)
    FIELD = "field"  #: a field name of the vector parameter named by ``parent``; "" = none
    FILE = "file"  #: input file (a checkpoint, a model)
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    STRING = "string"
    ENUM = "enum"  #: one of ``choices``, passed as the text itself (static strings)
    CRS = "crs"  #: authority id or WKT; "" = none
    RASTER_DESTINATION = "raster_destination"  #: output GeoTIFF
    VECTOR_DESTINATION = "vector_destination"  #: output vector file
    FILE_DESTINATION = "file_destination"  #: output file of another kind (a model, a report)


#: Parameters whose value is a file the run reads.
INPUT_FILE_KINDS = (Kind.RASTER, Kind.RASTERS, Kind.VECTOR, Kind.FILE)
#: Parameters whose value is a file the run writes.
#: The whole numbers QGIS passes on (it reads them as 32-bit integers: a larger one would arrive wrapped around),
#: the bounds of every whole-number parameter that declares none.
INT_RANGE = (-2**31, 2**31 - 1)

DESTINATION_KINDS = (Kind.RASTER_DESTINATION, Kind.VECTOR_DESTINATION, Kind.FILE_DESTINATION)
#: The worker parameter that tells how the user knows each vector layer, by parameter id: ``{"TEMPLATE":
#: "landcover_points (/data/landcover_points.geojson)"}``. Processing hands the worker a temporary copy of a
#: memory layer, a selection or a format the worker does not read (``/tmp/processing_.../TEMPLATE.gpkg``), a name
#: that means nothing to the user: messages and reports name the layer by this instead.
LAYER_NAMES = "LAYER_NAMES"


@dataclass(frozen=True)
class Parameter:
    """One parameter of a tool, as both sides know it.

    Attributes
    ----------
    name : str
        The id used in scripts, ``qgis_process`` and error messages (``"STRIDE"``).
    label : str
        What the QGIS dialog shows.
    kind : Kind
    default
        The value when the parameter is not given (the dialog shows it too).
    help : str
        Explanation shown in the algorithm's help (HTML allowed).
    optional : bool
        May be left empty; the engine then uses ``default``.
    advanced : bool
        Shown under "Advanced parameters" in the dialog.
    minimum, maximum : float or None
        Bounds of numbers (checked by both sides).
    choices : tuple of str
        Allowed values of an ``ENUM``.
    choice_labels : tuple of str
        What the dialog shows for each choice, when the value itself is not readable (the curated backbones'
        keys); scripts still give the value.
    file_filter : str
        File dialog filter of ``FILE`` and ``FILE_DESTINATION``.
    parent : str
        The raster parameter a ``BANDS`` parameter takes its bands from, the vector parameter a ``FIELD``
        parameter takes its fields from.
    created_by_default : bool
        An optional destination that the dialog fills with a temporary file unless the user skips it (REPORT).
    geometry : str
        The geometry of a ``VECTOR_DESTINATION``'s layer: ``"point"`` or ``"polygon"``.
    """

    name: str
    label: str
    kind: Kind
    default: object = None
    help: str = ""
    optional: bool = False
    advanced: bool = False
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    file_filter: str = ""
    parent: str = ""
    created_by_default: bool = False
    choice_labels: tuple[str, ...] = ()
    geometry: str = "point"

    @property
    def bounds(self) -> tuple[float | None, float | None]:
        """(minimum, maximum) as checked: the declared ones, a whole number's unset one taken from
        :data:`INT_RANGE`."""
        if self.kind is not Kind.INT:
            return self.minimum, self.maximum
        return (INT_RANGE[0] if self.minimum is None else self.minimum,
                INT_RANGE[1] if self.maximum is None else self.maximum)

    @property
    def allowed_range(self) -> str:
        """A number's bounds in words ("8 or more", "0 to 1"); "" for other kinds or when unbounded."""
        if self.kind not in (Kind.INT, Kind.FLOAT) or (self.minimum is None and self.maximum is None):
            return ""
        if self.maximum is None:
            return f"{self.minimum:g} or more"
        if self.minimum is None:
            return f"{self.maximum:g} or less"
        return f"{self.minimum:g} to {self.maximum:g}"

    @property
    def help_text(self) -> str:
        """``help`` as the algorithm's help shows it: a number's bounds and declared default appended
        (“Allowed: 8 or more. Default: 224.”), so that no help text repeats them by hand."""
        text = f"{self.help} Allowed: {self.allowed_range}." if self.allowed_range else self.help
        if self.kind in (Kind.INT, Kind.FLOAT) and self.default is not None:
            default = f"{self.default:g}" if self.kind is Kind.FLOAT else str(self.default)
            return f"{text} Default: {default}."
        return text


@dataclass(frozen=True)
class Output:
    """A figure an algorithm returns besides its files (``kind`` is ``"number"`` or ``"string"``)."""

    name: str
    label: str
    kind: str = "number"


@dataclass(frozen=True)
class Tool:
    """A tool's id (the worker's tool name and the algorithm's name) with its parameters and outputs."""

    name: str
    parameters: tuple[Parameter, ...]
    outputs: tuple[Output, ...] = ()
    #: The parameter that sets how many outputs an estimator tool's estimator makes (N_COMPONENTS, N_CLUSTERS);
    #: "" for the other tools.
    size_parameter: str = ""

    def __getitem__(self, name: str) -> Parameter:
        for parameter in self.parameters:
            if parameter.name == name:
                return parameter
        raise KeyError(f"{self.name} has no parameter {name}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters)
