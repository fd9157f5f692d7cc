"""Base class of IAMAP's Processing algorithms: parameters and help from the contract, icon, and handing work to
the worker."""

from __future__ import annotations

import configparser
import errno
import functools
import os
from pathlib import Path

from qgis.core import (QgsCoordinateReferenceSystem, QgsProcessingAlgorithm, QgsProcessingException,
                       QgsProcessingParameterString)
from qgis.PyQt.QtGui import QIcon

from ..engine.contract import LAYER_NAMES, Kind, Tool
from ..engine.destinations import check_inputs
from ..engine.errors import EnvironmentProblem, ParameterError
from ..engine.parameter_translation import legacy_names, translate
from ..engine.parameters import convert, parameter_of
from . import qgis_api
from .parameters import engine_value, file_path, layer_label, qgis_output, qgis_parameter
from .worker_runner import WorkerCancelled, WorkerError, run_worker

#: Kinds whose plain values the engine's own rules check before the run (see IamapAlgorithm.refusal).
CHECKED_BEFORE_THE_RUN = (Kind.INT, Kind.FLOAT, Kind.BOOL)
#: Why QGIS refuses a value of a kind, when the engine's rules see no fault (the layer would not load).
NOT_ACCEPTED = {Kind.RASTER: "is not a raster QGIS can open: check the file name, and that GDAL reads the file",
                Kind.VECTOR: "is not a vector layer QGIS can open: check the file name (and |layername=), and that "
                             "OGR reads the file"}
ICONS_DIR = Path(__file__).resolve().parent.parent / "icons"
METADATA = Path(__file__).resolve().parent.parent / "metadata.txt"
#: The page of the documentation with one section per tool (anchor: the tool id), under the repository.
TOOLS_PAGE = "blob/main/docs/tools.md"


@functools.cache
def repository_url() -> str:
    """The plugin's repository, as metadata.txt gives it (what the Plugin Manager links to)."""
    metadata = configparser.ConfigParser(interpolation=None)
    metadata.read(METADATA, encoding="utf-8")
    return metadata.get("general", "repository", fallback="").rstrip("/")


def plugin_icon(name: str) -> QIcon:
    """The icon ``icons/<name>.svg`` of the plugin folder."""
    return QIcon(str(ICONS_DIR / f"{name}.svg"))


def write_text_atomically(path: str, text: str, parameter: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, so a failed write (a full disk) leaves no partial file
    under the final name; the failure is a message naming ``parameter``."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        reason = f"no space left on the disk holding {target.parent}" if exc.errno == errno.ENOSPC else exc.strerror
        raise QgsProcessingException(f"{parameter}: cannot write {target}: {reason}.") from None


class IamapAlgorithm(QgsProcessingAlgorithm):
    """Subclasses set ``TOOL`` (their contract entry) and the class attributes below, and implement
    :meth:`process`; the parameters, outputs and the per-parameter help come from the contract.

    Every run's parameters first go through :func:`engine.parameter_translation.translate` (IAMAP 1.0.2's names
    and values, enum numbers, unknown names), here and in :meth:`checkParameterValues`, so that QGIS's own checks
    see today's values; :meth:`process` only ever gets today's parameters.

    ``HELP`` is the introduction of the help text; :meth:`shortHelpString` adds every parameter's label and
    explanation, so ``qgis_process help`` and the dialog's help panel explain every parameter.
    """

    TOOL: Tool | None = None
    DISPLAY_NAME = ""
    #: Groups read as the workflow in the toolbox (sorted by name): encode first, then analyse the features.
    GROUP = "2 \u2013 Analyse features"
    GROUP_ID = "analyse"
    ICON = "iamap"
    HELP = ""
    #: One line under the name in the toolbox, and words the toolbox search finds it by.
    SHORT_DESCRIPTION = ""
    TAGS: tuple[str, ...] = ()

    def name(self):
        return self.TOOL.name

    def displayName(self):  # noqa: N802
        return self.DISPLAY_NAME

    def group(self):
        return self.GROUP

    def groupId(self):  # noqa: N802
        return self.GROUP_ID

    def icon(self):
        return plugin_icon(self.ICON)

    def shortDescription(self):  # noqa: N802
        return self.SHORT_DESCRIPTION

    def tags(self):
        return list(self.TAGS) + ["iamap", "deep learning", "foundation model"]

    def input_name(self, parameters, context, name: str = "INPUT") -> str:
        """The name the input layer has in the project (its file name when it is not in the project)."""
        layer = self.parameterAsLayer(parameters, name, context)
        return layer.name() if layer is not None else Path(str(parameters.get(name, ""))).stem

    def helpUrl(self):  # noqa: N802 (QGIS's name)
        """The tool's section of the documentation (the dialog's Help button)."""
        return f"{repository_url()}/{TOOLS_PAGE}#{self.name()}" if repository_url() else ""

    def createInstance(self):  # noqa: N802
        return type(self)()

    def initAlgorithm(self, config=None):  # noqa: N802
        for spec in self.TOOL.parameters:
            self.addParameter(qgis_parameter(spec))
        for output in self.TOOL.outputs:
            self.addOutput(qgis_output(output))
        # IAMAP 1.0.2's names, declared but hidden: a graphical model only hands its child algorithms the
        # parameters they declare, and qgis_process refuses undeclared ones, so a 1.0.2 name would otherwise be
        # dropped before IAMAP could read it. A string parameter takes any value (1.0.2's were numbers, booleans...)
        for name in legacy_names(self.TOOL.name):
            legacy = QgsProcessingParameterString(name, f"{name} (IAMAP 1.0.2; see docs/migration.md)",
                                                  optional=True)
            legacy.setFlags(legacy.flags() | qgis_api.PARAMETER_HIDDEN)
            self.addParameter(legacy)

    def translated(self, parameters, context):
        """``parameters`` with today's names and values (see :mod:`engine.parameter_translation`)."""
        def input_stem():
            layer = self.parameterAsRasterLayer(parameters, "INPUT", context) if "INPUT" in self.TOOL.names else None
            return Path(file_path(layer.source(), layer.providerType())).stem if layer is not None else ""
        try:
            return translate(self.TOOL.name, dict(parameters), input_stem)
        except ParameterError as exc:
            raise QgsProcessingException(self.labelled(str(exc), exc.parameter)) from None

    def checkParameterValues(self, parameters, context):  # noqa: N802 (QGIS's name)
        try:
            translation = self.translated(parameters, context)
        except QgsProcessingException as exc:
            return False, str(exc)
        try:  # before QGIS's own checks, which open the layers: a FIFO given as INPUT would block them forever
            check_inputs(self.TOOL.name, translation.params)
        except ParameterError as exc:
            return False, self.labelled(str(exc), exc.parameter)
        ok, message = super().checkParameterValues(translation.params, context)
        refusal = self.refusal(translation.params, context)
        return (False, refusal) if refusal else (ok, message)

    def refusal(self, parameters, context) -> str:
        """Why a value cannot run, with the dialog label; "" when every value can.

        A value QGIS refuses gets the engine's reason (:func:`engine.parameters.convert`: the allowed range),
        not QGIS's bare "Incorrect parameter value for SIZE". A number or boolean given as plain text or number
        (qgis_process, processing.run) is checked by the engine's rules too, before the run: QGIS would read
        BATCH_SIZE=2.5 as 2 and RESUME=maybe as false without a word.
        """
        for spec in self.TOOL.parameters:
            definition, value = self.parameterDefinition(spec.name), parameters.get(spec.name)
            refused = definition is not None and not definition.checkValueIsAcceptable(value, context)
            plain = spec.kind in CHECKED_BEFORE_THE_RUN and isinstance(value, (str, int, float)) and value != ""
            if not (refused or plain):
                continue
            try:
                convert(spec, value, self.TOOL.name)
            except ParameterError as exc:
                return self.labelled(str(exc), spec.name)
            path = value.split("|")[0] if isinstance(value, str) and spec.kind in NOT_ACCEPTED else ""
            if refused and os.path.isabs(path) and not os.path.lexists(path):
                return self.labelled(f"{spec.name}: {path} does not exist.", spec.name)
            if refused:
                return self.labelled(f"{spec.name}: {value!r} {NOT_ACCEPTED.get(spec.kind, 'is not accepted')}"
                                     + (f" (allowed: {spec.allowed_range})." if spec.allowed_range else "."),
                                     spec.name)
        return ""

    def labelled(self, message: str, parameter: str) -> str:
        """``message`` with the dialog label of ``parameter`` when it is one of the tool's parameters, or one file of
        a list parameter ("LATER #2")."""
        parameter = parameter_of(parameter)
        if parameter in self.TOOL.names:
            return f"{message} (In the dialog: \u201c{self.TOOL[parameter].label}\u201d.)"
        return message

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS's name)
        translation = self.translated(parameters, context)
        for warning in translation.warnings:
            feedback.pushWarning(warning)
        return self.process(translation.params, context, feedback)

    def process(self, parameters, context, feedback) -> dict:
        """The tool's work, on today's parameters; subclasses implement it."""
        raise NotImplementedError

    def shortHelpString(self):  # noqa: N802
        # the help panel keeps source line breaks as paragraph breaks: one line per paragraph
        parts = [" ".join(self.HELP.split()), "<h3>Parameters</h3>"]
        parts += [f"<p><b>{spec.name}</b>: <i>{spec.label}</i>. {spec.help_text}</p>" for spec in self.TOOL.parameters]
        if self.TOOL.outputs:
            parts.append("<h3>Outputs</h3>")
            parts += [f"<p><b>{output.name}</b>: {output.label}.</p>" for output in self.TOOL.outputs]
        return "\n".join(parts)

    def extent_crs(self, parameters, context):
        """The CRS the engine expects EXTENT in: the input raster's (the encoder's is the target CRS)."""
        layer = self.parameterAsRasterLayer(parameters, "INPUT", context)
        return layer.crs() if layer is not None else QgsCoordinateReferenceSystem()

    def engine_parameters(self, parameters, context, feedback=None) -> dict:
        """Every parameter of the tool as the engine takes it (see :func:`utils.parameters.engine_value`)."""
        crs = self.extent_crs(parameters, context) if "EXTENT" in self.TOOL.names else None
        values = {spec.name: engine_value(self, spec, parameters, context, crs, feedback)
                  for spec in self.TOOL.parameters}
        # the worker may read Processing's temporary copy of a layer: it names the layer as the user chose it
        labels = {spec.name: layer_label(self, parameters, spec.name, context) for spec in self.TOOL.parameters
                  if spec.kind is Kind.VECTOR and values[spec.name]}
        if labels:
            values[LAYER_NAMES] = labels
        return values

    def run_engine(self, params: dict, feedback) -> dict:
        """Run the tool in the worker; every failure becomes a ``QgsProcessingException`` with a clear message.

        A parameter error names the parameter by its id (as scripts write it) and by its dialog label.
        """
        tool = self.TOOL.name
        try:
            return run_worker(tool, params, feedback)
        except EnvironmentProblem as exc:
            raise QgsProcessingException(str(exc)) from exc
        except WorkerCancelled:
            hint = (" Run it again with the same parameters and RESUME on to continue where it stopped."
                    if "RESUME" in self.TOOL.names else "")
            raise QgsProcessingException(f"IAMAP {tool} was cancelled; the worker was stopped.{hint}") from None
        except WorkerError as exc:
            # a traceback helps with a bug, not with a bad parameter: shown for internal errors only
            if exc.details and exc.internal:
                feedback.pushConsoleInfo(exc.details)
            raise QgsProcessingException(self.labelled(str(exc), exc.parameter)) from None
