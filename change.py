"""``iamap:change``: per-pixel change between two or more dates of one place (1 - cosine similarity of their
features), with a change mask, the date of largest change and the changed areas as polygons."""

from __future__ import annotations

from .engine import contract
from .utils.algorithm import IamapAlgorithm
from .utils.loading import load_styled, polygon_results
from .utils.styles import ranked_classes, style_continuous, style_paletted


class ChangeAlgorithm(IamapAlgorithm):
    """``iamap:change``: change between dates (engine: :mod:`engine.change`)."""

    TOOL = contract.CHANGE
    DISPLAY_NAME = "Change between dates"
    ICON = "change"
    SHORT_DESCRIPTION = "Per-pixel change between dates of one place, its mask, area and polygons"
    TAGS = ("change", "change detection", "difference", "dates", "time series", "multitemporal", "cosine",
            "otsu", "polygons", "features", "embedding")
    HELP = """
<p>Maps how much every pixel changed from a first date to each later date of the same place: 1 - the cosine
similarity of its feature vectors (0 unchanged, 1 unrelated, 2 opposite). The dates are feature rasters of one
backbone (iamap:encoder), or images that the tool encodes itself with one backbone (ENCODE). Every later date
is aligned on the first date's grid (reprojected and resampled when its CRS, pixel size or extent differ); only
the overlap is compared. Nodata in either date stays nodata.</p>
<p>Pixels whose change reaches THRESHOLD (or the automatic Otsu threshold the log gives) are changed: their
number and area are outputs, OUTPUT_MASK maps them and OUTPUT_POLYGONS outlines them. With several later dates
the output has one band per date, and the mask and OUTPUT_DATE give the later date of largest change.</p>"""

    def process(self, parameters, context, feedback):
        params = self.engine_parameters(parameters, context, feedback)
        outputs = self.run_engine(params, feedback)
        first = self.input_name(parameters, context)
        later = [layer.name() for layer in self.parameterAsLayerList(parameters, "LATER", context)]
        changed = {1: outputs["CHANGED_NAME"]}  # the mask's and the polygons' class
        threshold = outputs["THRESHOLD_USED"]
        style_continuous(outputs["OUTPUT"], 0.0, min(2.0, 2 * threshold), "Magma")
        load_styled(context, outputs["OUTPUT"], f"{first} change to {', '.join(later)}")
        result = {key: outputs[key] for key in ("OUTPUT", "THRESHOLD_USED", "CHANGED_PIXELS", "CHANGED_AREA",
                                                "CHANGED_FRACTION")}
        if outputs.get("OUTPUT_MASK"):
            style_paletted(outputs["OUTPUT_MASK"], list(changed), names=list(changed.values()))
            load_styled(context, outputs["OUTPUT_MASK"], f"{first} changed (threshold {threshold:.3f})")
            result["OUTPUT_MASK"] = outputs["OUTPUT_MASK"]
        if outputs.get("OUTPUT_DATE"):
            style_paletted(outputs["OUTPUT_DATE"], list(range(1, len(later) + 1)),
                           names=[f"largest change to {name}" for name in later])
            load_styled(context, outputs["OUTPUT_DATE"], f"{first} date of largest change")
            result["OUTPUT_DATE"] = outputs["OUTPUT_DATE"]
        result.update(polygon_results(context, outputs, ranked_classes(changed), f"{first} changed areas"))
        feedback.pushInfo(f"Changed: {outputs['CHANGED_PIXELS']} pixels, {outputs['CHANGED_AREA']:.6g} CRS "
                          f"units\u00b2 ({100 * outputs['CHANGED_FRACTION']:.2f} % of the compared pixels), at "
                          f"threshold {threshold:.4f}.")
        return result
