"""The QGIS API whose spelling changed between 3.22 and 3.40, chosen once for the running QGIS.

QGIS 3.30-3.36 moved many enums into the ``Qgis`` namespace (``QgsProcessing.TypeVectorPoint`` became
``Qgis.ProcessingSourceType.VectorPoint``); 3.40 and 3.44 keep the old names only as deprecated aliases ("monkey
patched" onto the old classes), which QGIS 4 removes. The plugin still supports 3.22, where only the old names exist.
Each entry below lists the current spelling first and 3.22's scoped spelling second; the first one this QGIS has as the
enum's own name is used (see :func:`is_own_name`). ``tests/qgis/test_qt6_readiness.py`` checks on every tested QGIS that
no plugin file spells an enum any other way.
"""

from __future__ import annotations

import qgis.core


def is_own_name(path: str, value) -> bool:
    """Whether ``path`` (``"Qgis.GeometryType.Polygon"``) is the enum value's own, current name, not an alias.

    An alias kept for old code is the same object reached another way (``QgsWkbTypes.GeometryType.PolygonGeometry``
    is ``Qgis.GeometryType.Polygon`` on 3.40), so the test is on the spelling: the enum class's qualified name is
    the path's owner and, for Python enums, the member's name its last part.
    """
    owner, _, member = path.rpartition(".")
    return type(value).__qualname__ == owner and getattr(value, "name", member) == member


def _current(*paths: str):
    """The value at the first of ``paths`` (dotted, from ``qgis.core``) that is its own name in this QGIS."""
    for path in paths:
        value = qgis.core
        try:
            for part in path.split("."):
                value = getattr(value, part)
        except AttributeError:
            continue
        if is_own_name(path, value):
            return value
    raise AttributeError(f"this QGIS has none of {', '.join(paths)}")


# Each: the current spelling, then 3.22's.
SOURCE_ANY_GEOMETRY = _current("Qgis.ProcessingSourceType.VectorAnyGeometry",
                               "QgsProcessing.SourceType.TypeVectorAnyGeometry")
SOURCE_POINT = _current("Qgis.ProcessingSourceType.VectorPoint", "QgsProcessing.SourceType.TypeVectorPoint")
SOURCE_POLYGON = _current("Qgis.ProcessingSourceType.VectorPolygon", "QgsProcessing.SourceType.TypeVectorPolygon")
SOURCE_RASTER = _current("Qgis.ProcessingSourceType.Raster", "QgsProcessing.SourceType.TypeRaster")
FIELD_ANY = _current("Qgis.ProcessingFieldParameterDataType.Any", "QgsProcessingParameterField.DataType.Any")
NUMBER_INTEGER = _current("Qgis.ProcessingNumberParameterType.Integer", "QgsProcessingParameterNumber.Type.Integer")
NUMBER_DOUBLE = _current("Qgis.ProcessingNumberParameterType.Double", "QgsProcessingParameterNumber.Type.Double")
PARAMETER_ADVANCED = _current("Qgis.ProcessingParameterFlag.Advanced",
                              "QgsProcessingParameterDefinition.Flag.FlagAdvanced")
PARAMETER_HIDDEN = _current("Qgis.ProcessingParameterFlag.Hidden", "QgsProcessingParameterDefinition.Flag.FlagHidden")
POINT_GEOMETRY = _current("Qgis.GeometryType.Point", "QgsWkbTypes.GeometryType.PointGeometry")
POLYGON_GEOMETRY = _current("Qgis.GeometryType.Polygon", "QgsWkbTypes.GeometryType.PolygonGeometry")
RASTER_LAYER_FILTER = _current("Qgis.LayerFilter.RasterLayer", "QgsMapLayerProxyModel.Filter.RasterLayer")
ALL_STYLE_CATEGORIES = _current("QgsMapLayer.StyleCategory.AllStyleCategories")


def save_default_style(layer) -> bool:
    """Save ``layer``'s style as its default (``<file>.qml``); True when it was written.

    3.40 deprecates the call without style categories, which 3.22's Python binding does not take.
    """
    try:
        message, ok = layer.saveDefaultStyle(ALL_STYLE_CATEGORIES)
    except TypeError:  # QGIS before 3.26
        message, ok = layer.saveDefaultStyle()
    return bool(ok)


def field_names(algorithm, parameters: dict, name: str, context) -> list:
    """The field names chosen for a field parameter (``parameterAsFields`` is deprecated from 3.34 on, in favour
    of ``parameterAsStrings``, which 3.22 does not have)."""
    read = getattr(algorithm, "parameterAsStrings", None) or algorithm.parameterAsFields
    return list(read(parameters, name, context))
