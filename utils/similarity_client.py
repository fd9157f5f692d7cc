"""The similarity explorer's link to its worker: ``engine.similarity_server`` (in IAMAP's own environment) run
through a ``QProcess``. Requests and replies are JSON lines, read when Qt says they arrived, so QGIS never waits
for the worker."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections import deque

from qgis.PyQt.QtCore import QObject, QProcess, QProcessEnvironment, pyqtSignal

from ..engine.host.status import PLUGIN_DIR, worker_process_environment, worker_python


class ExplorerServer(QObject):
    """The worker process; ``ready(reply)``, ``replied(reply)`` per request, ``failed(message)`` if it dies."""

    ready = pyqtSignal(dict)
    replied = pyqtSignal(dict)
    failed = pyqtSignal(str)

    def __init__(self, raster: str, parent=None):
        super().__init__(parent)
        self.raster, self.is_ready, self.stopping = raster, False, False
        # made and removed here, not by the worker: a killed worker leaves its memory-mapped features behind
        self.workdir = tempfile.mkdtemp(prefix="iamap-explorer-")
        self.sent: dict[int, float] = {}  # request id -> time sent
        self.stderr_tail: deque[str] = deque(maxlen=20)
        self.next_id = 0
        self.process = QProcess(self)
        self.process.readyReadStandardOutput.connect(self._read)
        self.process.readyReadStandardError.connect(self._read_stderr)
        self.process.finished.connect(self._finished)

    def start(self) -> None:
        """Start the worker (raises EnvironmentProblem when IAMAP's environment is not installed)."""
        environment = QProcessEnvironment()
        for key, value in worker_process_environment().items():
            environment.insert(key, value)
        self.process.setProcessEnvironment(environment)
        self.process.setWorkingDirectory(str(PLUGIN_DIR))
        self.process.start(str(worker_python()), ["-m", "engine.similarity_server", self.raster,
                                                  "--workdir", self.workdir])

    def send(self, request: dict) -> int:
        """Write ``request`` (its ``id`` is set here) and return the id; answered later through ``replied``."""
        self.next_id += 1
        self.sent[self.next_id] = time.perf_counter()
        self.process.write((json.dumps({**request, "id": self.next_id}) + "\n").encode("utf-8"))
        return self.next_id

    @property
    def running(self) -> bool:
        return self.process.state() != QProcess.ProcessState.NotRunning

    def stop(self) -> None:
        """Ask the worker to quit; kill it if it has not within a second (it may be in a long computation); remove
        its work folder (maps and features)."""
        self.stopping = True
        if self.running:
            self.process.write(b'{"op": "quit"}\n')
            self.process.closeWriteChannel()
            if not self.process.waitForFinished(1000):
                self.process.kill()
                self.process.waitForFinished(2000)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _read(self) -> None:
        while self.process.canReadLine():
            line = bytes(self.process.readLine()).decode("utf-8", "replace").strip()
            try:
                reply = json.loads(line)
            except ValueError:
                self.stderr_tail.append(line)
                continue
            if reply.get("op") == "ready":
                self.is_ready = reply.get("ok", False)
                (self.ready if self.is_ready else self.failed).emit(reply if self.is_ready else reply["message"])
                continue
            # a preview comes before the full map, under the same id
            sent = self.sent.get(reply.get("id")) if reply.get("preview") else self.sent.pop(reply.get("id"), None)
            reply["latency"] = time.perf_counter() - sent if sent is not None else None
            self.replied.emit(reply)

    def _read_stderr(self) -> None:
        text = bytes(self.process.readAllStandardError()).decode("utf-8", "replace")
        self.stderr_tail.extend(line for line in text.splitlines() if line.strip())

    def _finished(self, *_):
        if not self.stopping:
            self.failed.emit("IAMAP's similarity worker stopped: " + (" | ".join(self.stderr_tail) or
                                                                       f"exit status {self.process.exitCode()}"))
