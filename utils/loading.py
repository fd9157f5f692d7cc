"""How IAMAP's outputs load into the project when Processing opens them ("Open output file after running
algorithm", ``processing.runAndLoadResults``, a model's final outputs): with their style and a name that says
what they are.

The style itself is saved as ``<name>.qml`` beside the file (:mod:`utils.styles`), which QGIS applies when a
user adds the file by hand; Processing's own loading ignores that file, so a layer post-processor applies it.
"""

from __future__ import annotations

from qgis.core import QgsProcessingLayerPostProcessorInterface, QgsProject

from .styles import style_polygons


class StyledOutput(QgsProcessingLayerPostProcessorInterface):
    """Applies the ``.qml`` saved beside a loaded output, names it, and optionally puts it on top of the layer
    tree (reference points drawn over the raster they were read from)."""

    #: Processing holds post-processors by pointer only: Python must keep them alive until they run.
    _alive: list[StyledOutput] = []
    #: Layers to keep over the others loaded with them: whichever output is post-processed last, these end on top.
    _on_top: set[str] = set()

    def __init__(self, name: str, on_top: bool):
        super().__init__()
        self.name, self.on_top = name, on_top

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 (QGIS's name)
        message, ok = layer.loadDefaultStyle()
        # an output IAMAP saved no style for (the reference points) has none, and QGIS says so with an empty
        # message: only a style that exists but could not be applied is worth a line
        if not ok and message and feedback is not None:
            feedback.pushDebugInfo(f"The saved style of {self.name} was not applied: {message}")
        layer.setName(self.name)
        layer.triggerRepaint()
        if self.on_top:
            StyledOutput._on_top.add(layer.id())
        root = (context.project() or QgsProject.instance()).layerTreeRoot()
        for layer_id in list(StyledOutput._on_top):
            node = root.findLayer(layer_id)
            if node is None:
                StyledOutput._on_top.discard(layer_id)
            elif node.parent() is root and root.children().index(node) != 0:
                root.insertChildNode(0, node.clone())
                root.removeChildNode(node)


def load_styled(context, path: str, name: str, on_top: bool = False) -> None:
    """When ``context`` loads the output ``path`` on completion, load it styled and named ``name``."""
    if not path or not context.willLoadLayerOnCompletion(path):
        return
    details = context.layerToLoadOnCompletionDetails(path)
    details.name, details.forceName = name, True
    processor = StyledOutput(name, on_top)
    StyledOutput._alive.append(processor)
    details.setPostProcessor(processor)


def polygon_results(context, outputs: dict, classes: list, name: str) -> dict:
    """The OUTPUT_POLYGONS and POLYGONS results of a run that wrote polygons ({} otherwise): the layer styled with
    ``classes`` ((value, colour, name), :func:`utils.styles.style_polygons`) and loaded over the raster as ``name``."""
    path = outputs.get("OUTPUT_POLYGONS")
    if not path:
        return {}
    style_polygons(path, classes)
    load_styled(context, path, name, on_top=True)
    return {"OUTPUT_POLYGONS": path, "POLYGONS": outputs.get("POLYGONS", 0)}
