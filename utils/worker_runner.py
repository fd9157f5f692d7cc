"""Start the engine in IAMAP's own Python environment and relay its events into QGIS.

The worker is ``<env python> -m engine.worker TOOL PARAMS.json`` run from the plugin folder. Its stdout
carries JSON-lines events (see ``engine/events.py``), its stderr whatever libraries print. Parameters go in
as a JSON file, outputs come back as file paths: nothing but files crosses the process boundary.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

from ..engine.contract import TOOLS, EventKind
from ..engine.destinations import clean_after_kill
from ..engine.errors import EnvironmentProblem
from ..engine.host.status import PLUGIN_DIR, worker_process_environment, worker_python


class WorkerError(Exception):
    """The worker reported an error or died; ``message`` is for the user, ``details`` for the log, ``parameter``
    the id of the parameter at fault (empty when none is), ``internal`` whether it is a bug rather than a problem
    with the input or the environment."""

    def __init__(self, message: str, details: str = "", parameter: str = "", internal: bool = True):
        super().__init__(message)
        self.details, self.parameter, self.internal = details, parameter, internal


class WorkerCancelled(Exception):
    """The feedback was cancelled and the worker was killed."""


def _pump(stream, tag: str, events: queue.Queue) -> None:
    for line in iter(stream.readline, ""):
        events.put((tag, line.rstrip("\n")))
    events.put((tag, None))


def kill_process_group(process: subprocess.Popen) -> None:
    """Kill the worker and everything it started (its own process group / session)."""
    try:
        if sys.platform == "win32":
            subprocess.run(["taskkill", "/F", "/T", "/PID", str(process.pid)], capture_output=True)
        else:
            os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError):
        process.kill()
    try:
        process.wait(timeout=2)
    except subprocess.TimeoutExpired:
        pass


def run_worker(tool: str, params: dict, feedback=None, python: str | Path | None = None) -> dict:
    """Run one engine tool to completion and return its outputs.

    Parameters
    ----------
    tool : str
        A name of ``engine.worker.ENTRY_POINTS``.
    params : dict
        JSON-serialisable parameters (paths, numbers, strings).
    feedback : QgsProcessingFeedback, optional
        Receives progress, text, warnings and console lines; its cancel kills the worker.
    python : path, optional
        The interpreter; by default the one :func:`engine.host.status.worker_python` finds.

    Raises
    ------
    EnvironmentProblem
        No usable environment (the message says how to install it).
    WorkerCancelled
        ``feedback`` was cancelled.
    WorkerError
        The tool failed; ``str(error)`` is the worker's message, ``error.details`` its traceback.
    """
    python = str(python or worker_python())
    with tempfile.TemporaryDirectory(prefix="iamap-") as tmp:
        params_path = Path(tmp) / "params.json"
        params_path.write_text(json.dumps(params), encoding="utf-8")
        popen_options = {}
        if sys.platform == "win32":
            popen_options["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP | 0x08000000  # no console
        else:
            popen_options["start_new_session"] = True
        try:
            process = subprocess.Popen([python, "-m", "engine.worker", tool, str(params_path)], cwd=str(PLUGIN_DIR),
                                       env=worker_process_environment(), stdin=subprocess.DEVNULL,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
                                       errors="replace", **popen_options)
        except OSError as exc:
            raise EnvironmentProblem(f"Cannot start IAMAP's worker with {python}: {exc}") from exc
        with process:  # closes the pipes however _follow ends
            try:
                return _follow(process, feedback)
            except WorkerCancelled:
                # what no later run continues goes (the encoder's partial file stays for RESUME)
                if tool in TOOLS:
                    clean_after_kill(tool, params)
                raise



def _follow(process: subprocess.Popen, feedback) -> dict:
    events: queue.Queue = queue.Queue()
    for stream, tag in ((process.stdout, "event"), (process.stderr, "stderr")):
        threading.Thread(target=_pump, args=(stream, tag, events), daemon=True).start()
    open_streams, error, outputs = 2, None, None
    stderr_tail: deque[str] = deque(maxlen=40)
    while open_streams:
        if feedback is not None and feedback.isCanceled():
            kill_process_group(process)
            raise WorkerCancelled()
        try:
            tag, line = events.get(timeout=0.05)
        except queue.Empty:
            continue
        if line is None:
            open_streams -= 1
            continue
        if tag == "stderr":
            stderr_tail.append(line)
            if feedback is not None and line.strip():
                feedback.pushConsoleInfo(line)
            continue
        try:
            event = json.loads(line)
        except ValueError:
            if feedback is not None:
                feedback.pushConsoleInfo(line)
            continue
        kind = event.get("type")
        if kind == EventKind.PROGRESS and feedback is not None:
            feedback.setProgress(float(event.get("percent", 0)))
        elif kind == EventKind.TEXT and feedback is not None:
            feedback.pushInfo(event.get("message", ""))
        elif kind == EventKind.WARNING and feedback is not None:
            feedback.pushWarning(event.get("message", ""))
        elif kind == EventKind.ERROR:
            error = event
        elif kind == EventKind.RESULT:
            outputs = event.get("outputs", {})
    while process.poll() is None:  # streams closed: the process is exiting
        if feedback is not None and feedback.isCanceled():
            kill_process_group(process)
            raise WorkerCancelled()
        time.sleep(0.02)
    if error is not None:
        raise WorkerError(error.get("message", "IAMAP's worker failed."), error.get("traceback", ""),
                          error.get("parameter", ""), bool(error.get("internal", True)))
    if process.returncode != 0 or outputs is None:
        tail = "\n".join(stderr_tail)
        raise WorkerError(f"IAMAP's worker stopped unexpectedly (exit status {process.returncode}). "
                          f"Last lines of its output:\n{tail}", tail)
    return outputs
