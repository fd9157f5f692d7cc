"""Worker entry point: ``python -m engine.worker TOOL PARAMS.json``.

Runs one tool with the parameters read from a JSON file and reports through JSON-lines events on stdout
(see :mod:`engine.events`). Exit status: 0 success, 1 the tool failed (an ``error`` event was written),
2 bad command line.

Tools are looked up lazily so that ``diagnostics`` works even when, say, torch is broken.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback

from .destinations import guarded_run
from .errors import IamapError
from .events import Reporter, claim_stdout
from .memory import MEMORY_PARAMETERS, is_out_of_memory, out_of_memory_message

#: tool name -> "module:function" (relative to this package). Each function takes (params, reporter) and
#: returns the outputs dict sent in the ``result`` event.
ENTRY_POINTS = {
    "encoder": "encoder:run_encoder",
    "reduction": "reduction:run_reduction",
    "cluster": "cluster:run_cluster",
    "similarity": "similarity:run_similarity",
    "change": "change:run_change",
    "ml": "ml:run_ml",
    "diagnostics": "diagnostics:run_diagnostics",
    # Sleeps while reporting progress; exists so the cancel path can be tested without a model.
    "sleep": "worker:run_sleep",
}


def run_sleep(params: dict, reporter: Reporter) -> dict:
    """Test tool: report progress for ``seconds`` seconds, then return.

    With ``say`` it first writes that text to standard output twice, as a library would: with ``print`` and
    through file descriptor 1 (as C code does), so tests can check neither reaches the event stream.
    """
    seconds = float(params.get("seconds", 10))
    if params.get("say"):
        print(params["say"], flush=True)
        os.write(1, f"{params['say']}\n".encode())
    start = time.monotonic()
    while (elapsed := time.monotonic() - start) < seconds:
        reporter.progress(100 * elapsed / seconds)
        time.sleep(0.05)
    return {"slept": seconds}


def resolve_tool(name: str):
    """The function of tool ``name`` (:data:`ENTRY_POINTS`), imported."""
    if name not in ENTRY_POINTS:
        raise KeyError(name)
    module_name, function_name = ENTRY_POINTS[name].split(":")
    module = importlib.import_module(f"{__package__}.{module_name}")
    return getattr(module, function_name)


def run_tool(name: str, params: dict, reporter: Reporter) -> int:
    """Run ``name`` and report its result or error; return the process exit status."""
    try:
        tool = resolve_tool(name)
        with guarded_run(name, params, reporter):
            outputs = tool(params, reporter)
    except IamapError as exc:
        reporter.error(str(exc), traceback.format_exc(), getattr(exc, "parameter", ""))
        return 1
    except Exception as exc:  # a bug, unless memory ran out: the message says so, the traceback goes to the log
        if is_out_of_memory(exc):
            reporter.error(out_of_memory_message(name), traceback.format_exc(), MEMORY_PARAMETERS.get(name, ("",))[0])
            return 1
        reporter.error(f"Internal error in IAMAP's {name} tool: {type(exc).__name__}: {exc}", traceback.format_exc(),
                       internal=True)
        return 1
    reporter.progress(100, force=True)
    reporter.result(outputs or {})
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m engine.worker TOOL PARAMS.json``: run the tool, events on stdout; the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in ENTRY_POINTS:
        print(f"usage: python -m engine.worker {{{','.join(ENTRY_POINTS)}}} PARAMS.json", file=sys.stderr)
        return 2
    # GDAL's block cache defaults to 5 % of RAM; the tools read each block once, so a big cache is only memory
    os.environ.setdefault("GDAL_CACHEMAX", "256")
    events = claim_stdout()
    reporter = Reporter(events)
    try:
        with open(argv[1], encoding="utf-8") as f:
            params = json.load(f)
    except (OSError, ValueError) as exc:
        reporter.error(f"Cannot read the parameter file {argv[1]}: {exc}")
        return 2
    return run_tool(argv[0], params, reporter)


if __name__ == "__main__":
    sys.exit(main())
