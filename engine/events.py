"""JSON-lines events the worker writes to its real standard output.

One JSON object per line, with a ``type`` key (the kinds are :class:`engine.contract.EventKind`):

``progress``  ``{"type": "progress", "percent": 42.0}``
``text``      ``{"type": "text", "message": "..."}``
``warning``   ``{"type": "warning", "message": "..."}``
``error``     ``{"type": "error", "message": "...", "traceback": "...", "internal": false, "parameter": "STRIDE"}``
              (internal: a bug rather than bad input; parameter: the id at fault, for a ParameterError)
``result``    ``{"type": "result", "outputs": {...}}``

The QGIS side (:mod:`utils.worker_runner`) relays them into ``QgsProcessingFeedback``. Libraries that print
to ``sys.stdout`` must not corrupt this stream, so :func:`claim_stdout` moves file descriptor 1 to standard
error and keeps a private handle on the original for events.
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
from typing import IO, Any

from .contract import EventKind


def json_safe(value: Any) -> Any:
    """Make numpy scalars, paths and non-finite floats JSON-safe."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


class Reporter:
    """Writes events to a stream and remembers progress for throttling.

    Parameters
    ----------
    stream : file object or None
        Where JSON lines go. ``None`` keeps events in :attr:`events` only (tests, library use).
    """

    def __init__(self, stream: IO[str] | None = None):
        self.stream = stream
        self.events: list[dict] = []
        self._lock = threading.Lock()
        self._last_percent = -1.0
        self._last_time = 0.0

    def emit(self, event: dict) -> None:
        event = json_safe(event)
        with self._lock:
            self.events.append(event)
            if self.stream is not None:
                self.stream.write(json.dumps(event) + "\n")
                self.stream.flush()

    def progress(self, percent: float, force: bool = False) -> None:
        """Report progress in [0, 100], at most every 0.2 s or 0.5 % unless ``force``."""
        percent = max(0.0, min(100.0, float(percent)))
        now = time.monotonic()
        if force or percent >= 100 or (percent - self._last_percent >= 0.5 and now - self._last_time >= 0.2):
            self._last_percent, self._last_time = percent, now
            self.emit({"type": EventKind.PROGRESS.value, "percent": round(percent, 2)})

    def text(self, message: str) -> None:
        self.emit({"type": EventKind.TEXT.value, "message": message})

    def warning(self, message: str) -> None:
        self.emit({"type": EventKind.WARNING.value, "message": message})

    def error(self, message: str, traceback: str = "", parameter: str = "", internal: bool = False) -> None:
        event = {"type": EventKind.ERROR.value, "message": message, "traceback": traceback, "internal": internal}
        if parameter:
            event["parameter"] = parameter
        self.emit(event)

    def result(self, outputs: dict) -> None:
        self.emit({"type": EventKind.RESULT.value, "outputs": outputs})

    def stage(self, start: float, end: float) -> StageReporter:
        """A view of this reporter that maps 0-100 onto ``start``-``end`` of the whole run."""
        return StageReporter(self, start, end)


class NullReporter(Reporter):
    """A reporter that drops every event: the default of functions that may report but need not (tests,
    library use), so they call their reporter unconditionally."""

    def emit(self, event: dict) -> None:
        pass


#: The shared do-nothing reporter (it keeps no events, so one instance serves every caller).
NULL_REPORTER = NullReporter()


class StageReporter:
    """Maps a sub-task's 0-100 progress into a slice of the parent's range."""

    def __init__(self, parent: Reporter | StageReporter, start: float, end: float):
        self.parent, self.start, self.end = parent, start, end

    def progress(self, percent: float, force: bool = False) -> None:
        self.parent.progress(self.start + (self.end - self.start) * max(0.0, min(100.0, percent)) / 100, force)

    def stage(self, start: float, end: float) -> StageReporter:
        return StageReporter(self, start, end)

    def __getattr__(self, name):  # text, warning, error, result, emit go to the parent
        return getattr(self.parent, name)


class WarningsKept(StageReporter):
    """Passes everything to ``parent`` and keeps the warnings (``warnings``): what a run's report lists."""

    def __init__(self, parent: Reporter | StageReporter):
        super().__init__(parent, 0, 100)
        self.warnings: list[str] = []

    def warning(self, message: str) -> None:
        self.warnings.append(message)
        self.parent.warning(message)


def claim_stdout() -> IO[str]:
    """Return a private text stream on the original stdout and point fd 1 (and ``sys.stdout``) at stderr.

    After this, stray ``print`` calls and C libraries writing to stdout end up in the worker's stderr, which
    the QGIS side shows as console output, and the event stream stays valid JSON lines.
    """
    sys.stdout.flush()
    private_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(private_fd, "w", buffering=1, encoding="utf-8")
