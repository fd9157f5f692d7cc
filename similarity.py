"""``iamap:similarity``: cosine-similarity map of a (feature) raster to reference points, lines or polygons."""

from __future__ import annotations

from .engine import contract
from .utils.algorithm import IamapAlgorithm
from .utils.loading import load_styled, polygon_results
from .utils.styles import ranked_classes, style_continuous


class SimilarityAlgorithm(IamapAlgorithm):
    """``iamap:similarity``: cosine similarity to reference locations (engine: :mod:`engine.similarity`)."""

    TOOL = contract.SIMILARITY
    DISPLAY_NAME = "Similarity map"
    ICON = "similarity"
    SHORT_DESCRIPTION = "Cosine similarity of every pixel to reference points, lines or polygons"
    TAGS = ("similarity", "cosine", "search", "template", "prototype", "query by example", "features", "embedding")
    HELP = """
<p>Maps how similar every pixel is to reference locations: the cosine similarity between the pixel's vector
(all selected bands, typically the encoder's features) and the vectors under the references, from -1 to 1.
Computed with PyTorch block by block, so any raster size works. Nodata pixels stay nodata.</p>
<p>References are read at the exact pixels under them after reprojection to the raster's CRS; points outside
the raster (or EXTENT) or on nodata are dropped and counted in the log. The points actually used are written
to OUTPUT_POINTS.</p>"""

    def process(self, parameters, context, feedback):
        params = self.engine_parameters(parameters, context, feedback)
        outputs = self.run_engine(params, feedback)
        low, high = outputs.get("minimum"), outputs.get("maximum")
        if low is not None and high is not None:
            style_continuous(outputs["OUTPUT"], low, high)
            feedback.pushInfo(f"{outputs['references']} reference vectors; similarity from {low:.3f} to {high:.3f}.")
        reference = self.input_name(parameters, context, "TEMPLATE")
        load_styled(context, outputs["OUTPUT"], f"{self.input_name(parameters, context)} similarity to {reference}")
        result = {"OUTPUT": outputs["OUTPUT"]}
        if outputs.get("OUTPUT_POINTS"):
            result["OUTPUT_POINTS"] = outputs["OUTPUT_POINTS"]
            load_styled(context, params["OUTPUT_POINTS"], f"{reference} (reference points used)", on_top=True)
        if params["THRESHOLD"] is not None:
            classes = ranked_classes({1: f"similarity \u2265 {params['THRESHOLD']:g}"})
            result.update(polygon_results(context, outputs, classes, f"{reference} similarity \u2265 "
                                                                     f"{params['THRESHOLD']:g}"))
        return result
