"""The contract between the QGIS side and the engine: every tool's parameters and outputs, and the event kinds
of the worker's JSON-lines stream.

Standard library only (a test imports it in a bare ``python3 -I -S``): QGIS's Python imports it to build the
Processing parameters (:mod:`utils.parameters`), the engine imports it to build and check its parameter
dataclasses (:mod:`engine.parameters`). A parameter's id, label, default, bounds, choices and help exist here
and nowhere else.

One package, one module per tool's declarations (a tool's parameters read top to bottom in the dialog's order)
plus the shared types (:mod:`engine.contract.schema`) and parameters (:mod:`engine.contract.shared`); everything
is imported from the package itself (``from engine.contract import TOOLS, Kind``).
"""

from __future__ import annotations

from .change import CHANGE
from .diagnostics import DIAGNOSTICS
from .encoder import ENCODER
from .estimators import CLUSTER, REDUCTION
from .ml import ML
from .schema import (DESTINATION_KINDS, INPUT_FILE_KINDS, LAYER_NAMES, EventKind, Kind, Output, Parameter,
                     Tool)
from .shared import CHECKPOINT_SUFFIXES, MODEL_FILTER, MODEL_SUFFIX, RANDOM_SEED_HELP
from .similarity import SIMILARITY, SIMILARITY_AGGREGATIONS

__all__ = ["CHANGE", "CHECKPOINT_SUFFIXES", "CLUSTER", "DESTINATION_KINDS", "DIAGNOSTICS", "ENCODER",
           "INPUT_FILE_KINDS", "LAYER_NAMES", "ML", "MODEL_FILTER", "MODEL_SUFFIX", "RANDOM_SEED_HELP", "REDUCTION",
           "SIMILARITY",
           "SIMILARITY_AGGREGATIONS", "TOOLS", "EventKind", "Kind", "Output", "Parameter", "Tool", "label"]

TOOLS: dict[str, Tool] = {tool.name: tool for tool in (ENCODER, REDUCTION, CLUSTER, SIMILARITY, CHANGE, ML,
                                                               DIAGNOSTICS)}


def label(tool: str, parameter: str) -> str:
    """The dialog label of ``parameter`` of ``tool`` (the id itself when the tool does not declare it)."""
    spec = TOOLS.get(tool)
    try:
        return spec[parameter].label if spec else parameter
    except KeyError:
        return parameter
