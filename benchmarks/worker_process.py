"""Run one engine tool in its own worker process, as QGIS does, and measure that process alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run_tool(tool: str, params: dict, module: str = "engine.worker") -> tuple[dict, list[dict], float, float]:
    """Returns (outputs, events, wall seconds, peak RSS in MiB of this process only).

    ``module`` is the worker run with ``python -m`` (``benchmarks.null_model_worker``: the model costs nothing).
    """
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(params, f)
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", module, tool, f.name], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    stdout = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)  # this child's own rusage, not the maximum over all children
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    os.unlink(f.name)
    events = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    if process.returncode:
        raise SystemExit(f"{tool} failed: {events[-1] if events else process.returncode}")
    return events[-1]["outputs"], events, wall, usage.ru_maxrss / 1024
