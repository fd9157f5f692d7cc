"""The ``iamap`` Processing provider: one algorithm per tool module at the top of the plugin."""

from __future__ import annotations

from qgis.core import QgsProcessingProvider

from .change import ChangeAlgorithm
from .clustering import ClusterAlgorithm
from .diagnostics import DiagnosticsAlgorithm
from .encoder import EncoderAlgorithm
from .ml import MlAlgorithm
from .reduction import ReductionAlgorithm
from .similarity import SimilarityAlgorithm
from .utils.algorithm import plugin_icon


class IamapProvider(QgsProcessingProvider):
    """The ``iamap`` Processing provider: the seven IAMAP algorithms."""

    def id(self):
        return "iamap"

    def name(self):
        return "IAMAP"

    def longName(self):  # noqa: N802
        return "IAMAP: deep-learning foundation models for rasters"

    def icon(self):
        return plugin_icon("iamap")

    def loadAlgorithms(self):  # noqa: N802

        for algorithm in (EncoderAlgorithm(), ReductionAlgorithm(), ClusterAlgorithm(), MlAlgorithm(),
                          SimilarityAlgorithm(), ChangeAlgorithm(), DiagnosticsAlgorithm()):
            self.addAlgorithm(algorithm)
