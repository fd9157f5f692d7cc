"""Processing parameters built from the contract (:mod:`engine.contract`), and their values read back as the
plain JSON values the engine takes.

One function per direction, one branch per parameter kind: a tool declares nothing here, it only names its
contract entry (``IamapAlgorithm.TOOL``).
"""

from __future__ import annotations

from qgis.core import (QgsProcessingException, QgsProcessingOutputNumber, QgsProcessingOutputString,
                       QgsProcessingParameterBand, QgsProcessingParameterBoolean, QgsProcessingParameterCrs,
                       QgsProcessingParameterDefinition, QgsProcessingParameterEnum, QgsProcessingParameterExtent,
                       QgsProcessingParameterFeatureSource, QgsProcessingParameterField, QgsProcessingParameterFile,
                       QgsProcessingParameterFileDestination, QgsProcessingParameterMultipleLayers,
                       QgsProcessingParameterNumber,
                       QgsProcessingParameterRasterDestination, QgsProcessingParameterRasterLayer,
                       QgsProcessingParameterString, QgsProcessingParameterVectorDestination, QgsProviderRegistry)

from ..engine.contract import Kind, Output, Parameter
from ..engine.destinations import input_file_problem
from . import qgis_api

#: The widget wrapper of enum parameters whose choices have labels, as Processing imports it (by module path).
LABELLED_CHOICE_WRAPPER = f"{__package__}.labelled_choice.LabelledChoiceWrapper"


class OpensOnlyFiles:
    """A layer parameter that refuses, without opening it, a path to a folder, a FIFO, a device or an unreadable
    file. qgis_process checks every value by loading its layer before the algorithm's own check; GDAL opening a
    FIFO waits for a writer forever. The refusal's message comes from
    :meth:`utils.algorithm.IamapAlgorithm.checkParameterValues` (:func:`engine.destinations.check_inputs`)."""

    def checkValueIsAcceptable(self, value, context=None):  # noqa: N802 (QGIS's name)
        paths = value if isinstance(value, (list, tuple)) else [value]  # a list: a multiple-layer parameter's
        if any(isinstance(path, str) and input_file_problem(path.split("|")[0], folder_allowed=True)
               for path in paths):
            return False
        return super().checkValueIsAcceptable(value, context)


class RasterLayerParameter(OpensOnlyFiles, QgsProcessingParameterRasterLayer):
    """INPUT and the other raster parameters (see :class:`OpensOnlyFiles`)."""


class FeatureSourceParameter(OpensOnlyFiles, QgsProcessingParameterFeatureSource):
    """TEMPLATE and the other vector parameters (see :class:`OpensOnlyFiles`)."""


class RasterLayersParameter(OpensOnlyFiles, QgsProcessingParameterMultipleLayers):
    """LATER and the other lists of rasters (see :class:`OpensOnlyFiles`): every path of the list."""


def qgis_parameter(spec: Parameter) -> QgsProcessingParameterDefinition:
    """The Processing parameter of ``spec``: widget, default, bounds, choices and the advanced flag."""
    name, label, default, optional = spec.name, spec.label, spec.default, spec.optional
    if spec.kind is Kind.RASTER:
        parameter = RasterLayerParameter(name, label, optional=optional)
    elif spec.kind is Kind.RASTERS:
        parameter = RasterLayersParameter(name, label, qgis_api.SOURCE_RASTER, optional=optional)
    elif spec.kind is Kind.BANDS:
        parameter = QgsProcessingParameterBand(name, label, None, spec.parent, optional=optional, allowMultiple=True)
    elif spec.kind is Kind.EXTENT:
        parameter = QgsProcessingParameterExtent(name, label, optional=optional)
    elif spec.kind is Kind.VECTOR:
        parameter = FeatureSourceParameter(name, label, [qgis_api.SOURCE_ANY_GEOMETRY], optional=optional)
    elif spec.kind is Kind.FIELD:
        parameter = QgsProcessingParameterField(name, label, None, spec.parent, qgis_api.FIELD_ANY,
                                                optional=optional)
    elif spec.kind is Kind.FILE:
        parameter = QgsProcessingParameterFile(name, label, optional=optional, fileFilter=spec.file_filter)
    elif spec.kind in (Kind.INT, Kind.FLOAT):
        number_type = qgis_api.NUMBER_INTEGER if spec.kind is Kind.INT else \
            qgis_api.NUMBER_DOUBLE
        # an optional number whose default is "not set" (STRIDE) or 0 (TARGET_RESOLUTION) shows an empty box
        shown_default = None if optional and not default else default
        parameter = QgsProcessingParameterNumber(name, label, number_type, shown_default, optional)
        minimum, maximum = spec.bounds  # a whole number's unset bound: what QGIS can pass on
        if minimum is not None:
            parameter.setMinimum(minimum)
        if maximum is not None:
            parameter.setMaximum(maximum)
    elif spec.kind is Kind.BOOL:
        parameter = QgsProcessingParameterBoolean(name, label, bool(default), optional)
    elif spec.kind is Kind.STRING:
        parameter = QgsProcessingParameterString(name, label, default or None, optional=optional)
    elif spec.kind is Kind.ENUM:
        parameter = QgsProcessingParameterEnum(name, label, list(spec.choices), defaultValue=default,
                                               optional=optional, usesStaticStrings=True)
        if spec.choice_labels:  # the dialogs show the labels; the value stays the choice (utils.labelled_choice)
            parameter.setMetadata({"widget_wrapper": {"class": LABELLED_CHOICE_WRAPPER,
                                                      "labels": list(spec.choice_labels)}})
    elif spec.kind is Kind.CRS:
        parameter = QgsProcessingParameterCrs(name, label, default or None, optional=optional)
    elif spec.kind is Kind.RASTER_DESTINATION:
        # an optional raster (a confidence map) is only written when asked for
        parameter = QgsProcessingParameterRasterDestination(name, label, optional=optional,
                                                            createByDefault=not optional or spec.created_by_default)
    elif spec.kind is Kind.VECTOR_DESTINATION:
        geometry = {"point": qgis_api.SOURCE_POINT, "polygon": qgis_api.SOURCE_POLYGON}[spec.geometry]
        parameter = QgsProcessingParameterVectorDestination(name, label, geometry, optional=optional,
                                                            createByDefault=not optional or spec.created_by_default)
    elif spec.kind is Kind.FILE_DESTINATION:
        parameter = QgsProcessingParameterFileDestination(name, label, spec.file_filter, optional=optional,
                                                          createByDefault=spec.created_by_default)
    else:  # a kind added to the contract without its widget
        raise ValueError(f"no Processing parameter for kind {spec.kind}")
    if spec.advanced:
        parameter.setFlags(parameter.flags() | qgis_api.PARAMETER_ADVANCED)
    parameter.setHelp(spec.help_text)
    return parameter


def qgis_output(output: Output):
    """The Processing output of a contract figure (number or string)."""
    cls = QgsProcessingOutputNumber if output.kind == "number" else QgsProcessingOutputString
    return cls(output.name, output.label)


def file_path(source: str, provider: str) -> str:
    """The file behind a layer source or output URI of ``provider`` (``gdal`` or ``ogr``):
    ``/a/b.gpkg|layername=x`` -> ``/a/b.gpkg``.

    Decoded by that provider's own URI rules rather than cut at the first ``|``, so a ``|`` inside a file name
    survives. Each provider only knows its own keys (GDAL leaves ``|layername=`` in the path), hence the
    provider of the layer.
    """
    return QgsProviderRegistry.instance().decodeUri(provider, source).get("path") or source


def raster_file(spec: Parameter, layer) -> str:
    """The file of the raster ``layer`` given for ``spec``; refused when it is missing or not a file raster."""
    if layer is None:
        raise QgsProcessingException(f"{spec.name} ({spec.label}): no raster layer given, or it could not be loaded.")
    if layer.providerType() != "gdal":
        raise QgsProcessingException(f"{spec.name} ({spec.label}): layer {layer.name()!r} is not a file raster "
                                     f"(provider {layer.providerType()}); save it as a GeoTIFF first "
                                     "(Export > Save As).")
    return file_path(layer.source(), layer.providerType())


def layer_label(algorithm, parameters: dict, name: str, context) -> str:
    """How the user knows the vector layer of parameter ``name``: its name and source, ``landcover_points
    (/data/landcover_points.geojson)``, ``river points (memory layer)``; "" when none is given. The worker may
    read a temporary copy of it (see :data:`engine.contract.LAYER_NAMES`)."""
    layer = algorithm.parameterAsVectorLayer(parameters, name, context)
    if layer is None:
        return ""
    source = (file_path(layer.source(), "ogr") if layer.providerType() == "ogr"
              else f"{layer.providerType()} layer")
    given = parameters.get(name)
    selected = getattr(given, "selectedFeaturesOnly", False)  # a QgsProcessingFeatureSourceDefinition
    return f"{layer.name()} ({source}{', selected features' if selected else ''})"


def engine_value(algorithm, spec: Parameter, parameters: dict, context, extent_crs=None, feedback=None):
    """The value of ``spec`` in ``parameters`` as the engine takes it (None where an optional one is unset)."""
    name = spec.name
    given = parameters.get(name)
    if spec.kind is Kind.RASTER:
        return raster_file(spec, algorithm.parameterAsRasterLayer(parameters, name, context))
    if spec.kind is Kind.RASTERS:
        layers = algorithm.parameterAsLayerList(parameters, name, context)
        if not layers and not spec.optional:
            raise QgsProcessingException(f"{name} ({spec.label}): no raster layer given, or none could be loaded.")
        return [raster_file(spec, layer) for layer in layers]
    if spec.kind is Kind.BANDS:
        return [int(b) for b in algorithm.parameterAsInts(parameters, name, context)] or None
    if spec.kind is Kind.EXTENT:
        if given in (None, ""):
            return None
        rect = algorithm.parameterAsExtent(parameters, name, context, extent_crs)
        if rect.isNull():
            return None
        if rect.isEmpty():  # a zero-width or zero-height box is a mistake, not "the whole raster"
            raise QgsProcessingException(f"{name} ({spec.label}): the extent has no area ({rect.toString()}); draw "
                                         "a box with a width and a height, or leave it empty for the whole raster.")
        return [rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum()]
    if spec.kind is Kind.VECTOR:
        # memory layers and selections are written to a file the worker can read
        return file_path(algorithm.parameterAsCompatibleSourceLayerPath(parameters, name, context, ["gpkg", "shp"],
                                                                        "gpkg", feedback), "ogr")
    if spec.kind is Kind.FIELD:
        return (qgis_api.field_names(algorithm, parameters, name, context) or [""])[0]
    if spec.kind is Kind.FILE:
        return algorithm.parameterAsFile(parameters, name, context)
    if spec.kind is Kind.INT:
        return None if spec.optional and given in (None, "") else algorithm.parameterAsInt(parameters, name, context)
    if spec.kind is Kind.FLOAT:
        return None if spec.optional and given in (None, "") else \
            algorithm.parameterAsDouble(parameters, name, context)
    if spec.kind is Kind.BOOL:
        return algorithm.parameterAsBool(parameters, name, context)
    if spec.kind is Kind.STRING:
        return algorithm.parameterAsString(parameters, name, context)
    if spec.kind is Kind.ENUM:
        return algorithm.parameterAsEnumString(parameters, name, context)
    if spec.kind is Kind.CRS:
        if given in (None, ""):
            return ""
        crs = algorithm.parameterAsCrs(parameters, name, context)
        if not crs.isValid():
            raise QgsProcessingException(f"{name} ({spec.label}): {given!r} is not a coordinate reference system "
                                         "QGIS knows; give an authority id such as EPSG:32631, or leave it empty.")
        return crs.authid() or crs.toWkt()
    if spec.kind in (Kind.RASTER_DESTINATION, Kind.VECTOR_DESTINATION):
        destination = algorithm.parameterAsOutputLayer(parameters, name, context)
        provider = "gdal" if spec.kind is Kind.RASTER_DESTINATION else "ogr"
        return file_path(destination, provider) if destination else ""
    if spec.kind is Kind.FILE_DESTINATION:
        return algorithm.parameterAsFileOutput(parameters, name, context)
    raise ValueError(f"no reader for kind {spec.kind}")
