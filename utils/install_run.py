"""The install command of the install dialog, run in the background in its own process group.

Its JSON-lines events and its other output come back as Qt signals; Cancel kills the command, pip and whatever
pip started. Only qgis, Qt and the standard library here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading

from qgis.PyQt.QtCore import QObject, pyqtSignal

from ..engine.host.status import PLUGIN_DIR, worker_process_environment
from .worker_runner import kill_process_group


class InstallRun(QObject):
    """The install command in the background; its JSON-lines events and other output come back as signals."""

    event = pyqtSignal(dict)
    line = pyqtSignal(str)
    ended = pyqtSignal(int)

    def __init__(self, command: list[str], parent=None):
        super().__init__(parent)
        self.command = command
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        options = {"start_new_session": True}
        if sys.platform == "win32":  # its own group for taskkill /T, and no console window over QGIS
            options = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP | 0x08000000}
        self.process = subprocess.Popen(self.command, cwd=str(PLUGIN_DIR), env=worker_process_environment(),
                                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, encoding="utf-8", errors="replace", **options)
        threading.Thread(target=self._read, args=(self.process,), daemon=True).start()

    def _read(self, process: subprocess.Popen) -> None:
        for raw in process.stdout:
            raw = raw.rstrip("\n")
            try:
                event = json.loads(raw)
            except ValueError:
                event = None
            if isinstance(event, dict) and "type" in event:
                self.event.emit(event)
            elif raw.strip():
                self.line.emit(raw)
        self.ended.emit(process.wait())

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def cancel(self) -> None:
        """Kill the command, pip and whatever pip started (its whole process group)."""
        if self.running:
            kill_process_group(self.process)
