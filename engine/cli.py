"""The ``iamap`` command: every tool of the engine from a terminal, without QGIS.

    iamap encoder --INPUT scene.tif --OUTPUT features.tif [--BACKBONE ...]
    iamap ml --INPUT features.tif --TEMPLATE training.gpkg --GT_COL class --OUTPUT classes.tif
    iamap TOOL --help          # every parameter: id, dialog label, default, explanation
    iamap encoder --INPUT a.tif b.tif --OUTPUT 'features/{name}.tif' --SCHEDULER tcp://head:8786
                               # several rasters, one after the other, each spread over a Dask cluster

Parameters are the Processing tools' ids (:mod:`engine.contract`) and are checked by the same code; the run
is the worker's (:func:`engine.worker.run_tool`: destination checks, locks, the same error messages). Progress
and messages go to standard error, the outputs as JSON to standard output. Exit status: 0 done, 1 the tool
failed (the message says why), 2 bad command line.

Installed with the engine (``pip install <plugin folder>``: the ``iamap`` command, the package
``iamap.engine``); from the plugin folder it also runs as ``python -m engine.cli``.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
from pathlib import Path
from typing import IO

from . import __version__
from .contract import DESTINATION_KINDS, TOOLS, Kind, Parameter
from .errors import ParameterError
from .events import Reporter, json_safe
from .parameter_translation import legacy_names, translate
from .worker import run_tool

#: Tools the command offers: every contract tool (the worker's test tool is left out).
COMMAND_TOOLS = tuple(TOOLS)


def plain(text: str) -> str:
    """Help text without its HTML."""
    return html.unescape(re.sub(r"<[^>]+>", "", text))


def add_parameter(parser: argparse.ArgumentParser, spec: Parameter) -> None:
    """Add the contract parameter ``spec`` to ``parser`` as ``--NAME``, with its help and default."""
    shown = "" if spec.default in (None, "") else f" (default: {spec.default})"
    choices = f" Choices: {', '.join(spec.choices)}." if spec.choices and len(spec.choices) <= 12 else ""
    kwargs = {"dest": spec.name, "default": None, "metavar": spec.kind.value.upper(),
              "help": f"{spec.label}{shown}. {plain(spec.help)}{choices}".replace("%", "%%")}
    if spec.kind is Kind.BANDS:
        kwargs.update(nargs="+", metavar="BAND")
    elif spec.kind is Kind.RASTERS:
        kwargs.update(nargs="+", metavar="RASTER")
    elif spec.name == "INPUT" and spec.kind is Kind.RASTER:
        kwargs.update(nargs="+")
        kwargs["help"] += (" Several rasters run one after the other with the same parameters (each spread over "
                           "the cluster with SCHEDULER); every output then names them with {name}, the raster's "
                           "file name without its extension: --OUTPUT 'features/{name}.tif'.")
    elif spec.kind is Kind.EXTENT:
        kwargs.update(nargs=4, metavar=("XMIN", "YMIN", "XMAX", "YMAX"))
    parser.add_argument(f"--{spec.name}", **kwargs)


def build_parser() -> argparse.ArgumentParser:
    """The ``iamap`` command's parser: one sub-command per tool, one option per parameter."""
    parser = argparse.ArgumentParser(prog="iamap", description="IAMAP's tools without QGIS: deep-learning features "
                                     "of rasters, and what to do with them. Parameters are those of the QGIS "
                                     "Processing tools (iamap:<tool>).")
    parser.add_argument("--version", action="version", version=f"IAMAP engine {__version__}")
    tools = parser.add_subparsers(dest="tool", metavar="TOOL", required=True)
    for name in COMMAND_TOOLS:
        tool = TOOLS[name]
        sub = tools.add_parser(name, help=f"iamap:{name}", description=f"iamap:{name}. Outputs: "
                               + (", ".join(o.name for o in tool.outputs) or "files"))
        for spec in tool.parameters:
            add_parameter(sub, spec)
        for legacy in legacy_names(name):  # IAMAP 1.0.2's names: accepted, not advertised (docs/migration.md)
            sub.add_argument(f"--{legacy}", dest=legacy, default=None, help=argparse.SUPPRESS)
    return parser


def translated(tool: str, params: dict, several: bool) -> dict | None:
    """``params`` through the QGIS side's own translation (IAMAP 1.0.2's names, enum numbers), its warnings on
    standard error; None (after the message) when a value cannot be honoured. With several rasters an OUTPUT
    folder names each output with {name}."""
    try:
        translation = translate(tool, params, (lambda: "{name}") if several else None)
    except ParameterError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return None
    for warning in translation.warnings:
        sys.stderr.write(f"warning: {warning}\n")
    return translation.params


class TerminalReporter(Reporter):
    """Events as a terminal shows them: a progress bar (or a line every 10 % when not a terminal), messages and
    warnings on standard error; the outputs kept for :func:`main` to print."""

    def __init__(self, stream: IO[str] | None = None):
        super().__init__(None)
        self.terminal = stream or sys.stderr
        self.outputs, self.error_message = None, ""
        self._tty = self.terminal.isatty()
        self._shown = -10.0

    def emit(self, event: dict) -> None:
        event = json_safe(event)
        kind = event["type"]
        if kind == "progress":
            self._progress(event["percent"])
        elif kind in ("text", "warning"):
            self._line(("warning: " if kind == "warning" else "") + event["message"])
        elif kind == "error":
            self.error_message = event["message"]
            self._line(f"error: {event['message']}")
            if event.get("internal") and event.get("traceback"):
                self._line(event["traceback"])
        elif kind == "result":
            self.outputs = event["outputs"]

    def _progress(self, percent: float) -> None:
        if self._tty:
            done = int(percent / 2.5)
            self.terminal.write(f"\r[{'#' * done}{'.' * (40 - done)}] {percent:5.1f} %")
            self.terminal.flush()
        elif percent >= self._shown + 10 or percent >= 100 > self._shown:
            self._shown = percent
            self.terminal.write(f"{percent:.0f} %\n")

    def _line(self, text: str) -> None:
        self.terminal.write(("\r" + " " * 52 + "\r" if self._tty else "") + text + "\n")
        self.terminal.flush()


def main(argv: list[str] | None = None) -> int:
    """Run the ``iamap`` command; return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    params = {name: value for name, value in vars(args).items() if name != "tool" and value is not None}
    inputs = params.get("INPUT")
    if inputs:
        params["INPUT"] = inputs[0]
    params = translated(args.tool, params, several=bool(inputs) and len(inputs) > 1)
    if params is None:
        return 1
    params.pop("INPUT", None)
    if inputs is None or len(inputs) == 1:
        if inputs:
            params["INPUT"] = inputs[0]
        reporter = TerminalReporter()
        status = run_tool(args.tool, params, reporter)
        if status == 0:
            print(json.dumps(reporter.outputs, indent=1))
        return status
    runs = batch_runs(args.tool, params, inputs)
    problem = batch_problem(args.tool, params, runs)
    if problem:
        parser.error(problem)
    results, failed = [], 0
    for number, run in enumerate(runs, start=1):
        sys.stderr.write(f"== {run['INPUT']} ({number} of {len(runs)})\n")
        reporter = TerminalReporter()
        status = run_tool(args.tool, run, reporter)
        failed += status != 0
        results.append({"INPUT": run["INPUT"], **({"outputs": reporter.outputs} if status == 0 else
                                                   {"error": reporter.error_message})})
    print(json.dumps(results, indent=1))
    if failed:
        sys.stderr.write(f"{failed} of {len(runs)} rasters failed (see their errors above).\n")
    return 1 if failed else 0


def destinations(tool: str, params: dict) -> list[str]:
    """The destination parameters given for ``tool``."""
    return [spec.name for spec in TOOLS[tool].parameters
            if spec.kind in DESTINATION_KINDS and params.get(spec.name)]


def batch_runs(tool: str, params: dict, inputs: list[str]) -> list[dict]:
    """The parameters of each raster's run: its INPUT, and {name} in the destinations replaced by its file name."""
    names = destinations(tool, params)
    return [dict(params, INPUT=path, **{name: params[name].replace("{name}", Path(path).stem) for name in names})
            for path in inputs]


def batch_problem(tool: str, params: dict, runs: list[dict]) -> str:
    """Why several INPUT rasters cannot run with these parameters ("" when they can): outputs must not collide."""
    names = destinations(tool, params)
    missing = [name for name in names if "{name}" not in params[name]]
    if missing:
        return (f"with several INPUT rasters, {', '.join(missing)} must contain {{name}} (the raster's file name "
                f"without extension), e.g. --{missing[0]} 'out/{{name}}.tif', so that each raster gets its own.")
    stems = [Path(run["INPUT"]).stem.lower() for run in runs]  # a.tif and A.tif are one file on Windows and macOS
    repeated = sorted({stem for stem in stems if stems.count(stem) > 1})
    if repeated:
        return f"several INPUT rasters share the name {repeated[0]!r}: their outputs would collide; rename one."
    read = {str(Path(run["INPUT"]).resolve()).lower(): run["INPUT"] for run in runs}
    for run in runs:
        for name in names:
            written = str(Path(run[name]).resolve()).lower()
            if written in read:
                return (f"{name} of {Path(run['INPUT']).name} would be {Path(read[written]).name}, another INPUT "
                        f"raster: it would be overwritten before being read. Choose outputs that no input is named "
                        f"like.")
    return ""


if __name__ == "__main__":
    sys.exit(main())
