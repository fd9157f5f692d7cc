"""Default styles for IAMAP's outputs, saved as a .qml beside the file so QGIS applies them whenever the
layer is loaded (by Processing, by the user, or in another project)."""

from __future__ import annotations

from qgis.core import (QgsColorRampShader, QgsRasterLayer, QgsRasterShader, QgsSingleBandPseudoColorRenderer,
                       QgsStyle)


def style_continuous(path: str, minimum: float, maximum: float, ramp_name: str = "Viridis") -> bool:
    """Single-band pseudocolour with ``ramp_name`` from ``minimum`` to ``maximum``; writes ``<name>.qml``."""
    layer = QgsRasterLayer(path, "styled", "gdal")
    if not layer.isValid():
        return False
    ramp = QgsStyle.defaultStyle().colorRamp(ramp_name)
    shader_function = QgsColorRampShader(minimum, maximum, ramp)
    shader_function.classifyColorRamp(8, -1)
    shader = QgsRasterShader(minimum, maximum)
    shader.setRasterShaderFunction(shader_function)
    renderer = QgsSingleBandPseudoColorRenderer(layer.dataProvider(), 1, shader)
    renderer.setClassificationMin(minimum)
    renderer.setClassificationMax(maximum)
    layer.setRenderer(renderer)
    message, ok = layer.saveDefaultStyle()
    return bool(ok)
