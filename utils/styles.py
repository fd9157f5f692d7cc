"""Default styles for IAMAP's outputs, saved as a .qml beside the file so QGIS applies them whenever the
layer is loaded (by Processing, by the user, or in another project)."""

from __future__ import annotations

from qgis.core import (QgsCategorizedSymbolRenderer, QgsColorRampShader, QgsContrastEnhancement, QgsFillSymbol,
                       QgsMultiBandColorRenderer, QgsPalettedRasterRenderer, QgsRasterLayer, QgsRasterShader,
                       QgsRendererCategory, QgsSingleBandPseudoColorRenderer, QgsStyle, QgsVectorLayer)
from qgis.PyQt.QtGui import QColor

from ..engine.catalog import NOISE_COLOUR, class_colour
from . import qgis_api


def _save_style(path: str, make_renderer) -> bool:
    """Load ``path``, set ``make_renderer(layer)`` and save it as the layer's default style (``<name>.qml``)."""
    layer = QgsRasterLayer(path, "styled", "gdal")
    if not layer.isValid():
        return False
    layer.setRenderer(make_renderer(layer))
    return qgis_api.save_default_style(layer)


def style_continuous(path: str, minimum: float, maximum: float, ramp_name: str = "Viridis", clip: bool = False
                     ) -> bool:
    """Single-band pseudocolour with ``ramp_name`` from ``minimum`` to ``maximum``; with ``clip`` the values
    outside that range are not drawn (a mask: only what reaches a threshold shows)."""
    def renderer(layer):
        shader_function = QgsColorRampShader(minimum, maximum, QgsStyle.defaultStyle().colorRamp(ramp_name))
        shader_function.classifyColorRamp(8, -1)
        shader_function.setClip(clip)
        shader = QgsRasterShader(minimum, maximum)
        shader.setRasterShaderFunction(shader_function)
        result = QgsSingleBandPseudoColorRenderer(layer.dataProvider(), 1, shader)
        result.setClassificationMin(minimum)
        result.setClassificationMax(maximum)
        return result
    return _save_style(path, renderer)


def style_rgb(path: str, ranges: list) -> bool:
    """Bands 1-3 as red, green, blue, each stretched over its (minimum, maximum) in ``ranges``."""
    def renderer(layer):
        provider = layer.dataProvider()
        result = QgsMultiBandColorRenderer(provider, 1, 2, 3)
        setters = (result.setRedContrastEnhancement, result.setGreenContrastEnhancement,
                   result.setBlueContrastEnhancement)
        for band, ((low, high), setter) in enumerate(zip(ranges[:3], setters), start=1):
            enhancement = QgsContrastEnhancement(provider.dataType(band))
            enhancement.setMinimumValue(low)
            enhancement.setMaximumValue(high)
            enhancement.setContrastEnhancementAlgorithm(QgsContrastEnhancement.ContrastEnhancementAlgorithm.StretchToMinimumMaximum)
            setter(enhancement)  # the renderer takes ownership (the constructor's arguments do not survive)
        return result
    return _save_style(path, renderer)


def cumulative_cut_ranges(path: str, bands: tuple[int, ...] = (1, 2, 3), low: float = 0.02, high: float = 0.98
                          ) -> list[tuple[float, float]]:
    """The 2-98 % range of each band, as QGIS's cumulative-cut stretch computes it (on a sample of pixels)."""
    layer = QgsRasterLayer(path, "ranges", "gdal")
    provider = layer.dataProvider()
    return [tuple(provider.cumulativeCut(band, low, high, layer.extent(), 250_000)) for band in bands
            if band <= layer.bandCount()]


def categorized_colours(layer, field: str) -> dict[str, str]:
    """The colour of each category (``#rrggbb`` by value as text) when ``layer`` is drawn with a categorized
    style on ``field``; {} otherwise. The classes of a map trained on the layer then look as they do on it."""
    renderer = layer.renderer() if layer is not None and hasattr(layer, "renderer") else None
    if not isinstance(renderer, QgsCategorizedSymbolRenderer) or renderer.classAttribute() != field:
        return {}
    colours = {}
    for category in renderer.categories():
        value = category.value()
        if value in (None, "") or category.symbol() is None or isinstance(value, list):
            continue  # the "all other values" category; a category of several values has no single class
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # whole-number labels are classes "1", "2"...
        colours[str(value).strip()] = category.symbol().color().name()
    return colours


def cluster_colour(label: int) -> QColor:
    """The colour of cluster ``label`` (as in every paletted style IAMAP writes)."""
    return QColor(class_colour(label))


def style_paletted(path: str, labels: list[int], noise_label: int | None = None, names: list[str] | None = None,
                   colours: list[str] | None = None) -> bool:
    """One colour per label, named ``names`` (default "cluster <label>"); ``noise_label`` (if any) light grey,
    named "noise". Clusters get the colour of their label, named classes ``colours`` (``#rrggbb``, the engine's
    choice: see :mod:`engine.class_colours`; without it, the colour of their label as clusters)."""
    def renderer(layer):
        if names is None:
            classes = [QgsPalettedRasterRenderer.Class(label, cluster_colour(label), f"cluster {label}")
                       for label in labels if label != noise_label]
        else:
            classes = [QgsPalettedRasterRenderer.Class(label, QColor(colour), name)
                       for label, name, colour in zip(labels, names, colours or map(class_colour, labels))]
        if noise_label is not None:
            classes.insert(0, QgsPalettedRasterRenderer.Class(noise_label, QColor(NOISE_COLOUR), "noise"))
        return QgsPalettedRasterRenderer(layer.dataProvider(), 1, classes)
    return _save_style(path, renderer)


def raster_classes(path: str) -> list[tuple[int, QColor, str]]:
    """(value, colour, name) of each class of the paletted style saved for the raster ``path`` (empty without
    one): the polygons of a class raster take the colours and names of the raster's own style."""
    layer = QgsRasterLayer(path, "classes", "gdal")  # kept while its renderer is read: the layer owns it
    renderer = layer.renderer()
    if not isinstance(renderer, QgsPalettedRasterRenderer):
        return []
    return [(int(item.value), QColor(item.color), item.label) for item in renderer.classes()]


def ranked_classes(names: dict[int, str]) -> list[tuple[int, QColor, str]]:
    """(value, colour, name) of classes named ``names`` (value -> name), coloured by rank as named classes are."""
    return [(value, cluster_colour(rank), name) for rank, (value, name) in enumerate(sorted(names.items()))]


def style_polygons(path: str, classes: list[tuple[int, QColor, str]]) -> bool:
    """The polygons of IAMAP (:mod:`engine.polygons`) filled with one colour per ``class_value`` of ``classes``
    ((value, colour, name)), outlined in a darker shade; saved as the layer's default style."""
    layer = QgsVectorLayer(path, "polygons", "ogr")
    if not layer.isValid():
        return False
    categories = []
    for value, colour, name in classes:
        symbol = QgsFillSymbol.createSimple({"color": colour.name(), "outline_color": colour.darker(150).name(),
                                             "outline_width": "0.3"})
        categories.append(QgsRendererCategory(value, symbol, name))
    layer.setRenderer(QgsCategorizedSymbolRenderer("class_value", categories))
    return qgis_api.save_default_style(layer)
