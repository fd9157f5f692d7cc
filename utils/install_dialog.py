"""The install dialog: what IAMAP's worker environment will contain, the PyTorch build, and the install itself
with a live log, progress, cancel and the self-test's result.

The install is the headless command (``python -m engine.host.environment install --events``, same flags) run in
the background in its own process group: QGIS never waits on pip, and Cancel kills the command with pip and
everything pip started. The new environment is built beside the current one and swapped in only after its
self-test passed, so a cancelled or failed install leaves the previous one in use. Only qgis, Qt and the
standard library here.
"""

from __future__ import annotations

import html
import json
import platform
import subprocess
import sys
import threading

from qgis.PyQt.QtCore import QObject, Qt, pyqtSignal
from qgis.PyQt.QtGui import QFont, QFontDatabase
from qgis.PyQt.QtWidgets import (QApplication, QCheckBox, QComboBox, QDialog, QFormLayout, QHBoxLayout, QLabel,
                                 QPlainTextEdit, QProgressBar, QPushButton, QStackedWidget, QTreeWidget,
                                 QTreeWidgetItem, QVBoxLayout, QWidget)

from ..engine.contract import EventKind
from ..engine.host.install import recover_interrupted_swap
from ..engine.errors import EnvironmentProblem
from ..engine.host.install_plan import InstallPlan, make_plan
from ..engine.host.status import PLUGIN_DIR, check_environment, env_python, worker_process_environment
from ..engine.host.torch_build import BUILDS, index_url
from .worker_runner import _kill as kill_process_group

#: QgsSettings key: True once the user ticked "Don't show this at start-up again".
DONT_SHOW_KEY = "iamap/install_dialog/dont_show_at_startup"
PASSED, FAILED = "\u2714", "\u2718"
#: What each requirement is for, shown beside it (a requirement missing here is shown without).
PURPOSES = {"torch": "deep-learning engine", "torchvision": "image models and transforms",
            "timm": "vision transformers (the encoder's backbones)", "torchgeo": "remote-sensing weights (SSL4EO-S12)",
            "rasterio": "raster reading and writing, with its own GDAL", "geopandas": "reference vectors (similarity)",
            "scikit-learn": "PCA, KMeans and the other estimators", "umap-learn": "UMAP reduction",
            "hdbscan": "HDBSCAN clustering", "skops": "model files that cannot run code", "numpy": "arrays",
            "pandas": "tables", "safetensors": "weight files that cannot run code",
            "huggingface_hub": "pretrained weights from the Hugging Face hub", "requests": "downloads"}


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


class InstallDialog(QDialog):
    """Non-modal; ``finished_install(ok, message)`` is emitted when an install ends, ``declined`` on "Not now"."""

    finished_install = pyqtSignal(bool, str)
    declined = pyqtSignal()
    _planned = pyqtSignal(object, str)

    def __init__(self, parent=None, env_dir=None, settings=None):
        super().__init__(parent)
        self.env_dir = env_dir
        self.settings = settings
        self.plan: InstallPlan | None = None
        self.detected = None  # the BuildChoice of auto-detection
        self.run: InstallRun | None = None
        self.state = "plan"
        self.log_lines: list[str] = []
        self._outcome: dict = {}
        self.setWindowTitle("IAMAP: Python environment")
        self.setModal(False)
        self.setMinimumWidth(800)
        self._build_widgets()
        self._planned.connect(self._show_plan)
        self.refresh()

    # -- widgets -------------------------------------------------------------------------------------------------
    def _build_widgets(self) -> None:
        self.title = QLabel()
        self.title.setFont(_bigger(self.title.font(), 3, bold=True))
        self.status_label = _wrapping_label()
        self.pages = QStackedWidget()
        self.pages.addWidget(self._plan_page())
        self.pages.addWidget(self._run_page())
        self.dont_show_box = QCheckBox("Don't show this at start-up again")
        if self.settings is not None:
            self.dont_show_box.setChecked(self.settings.value(DONT_SHOW_KEY, False, type=bool))
            self.dont_show_box.toggled.connect(lambda on: self.settings.setValue(DONT_SHOW_KEY, on))
        self.not_now_button = QPushButton("Not now")
        self.install_button = QPushButton("Install")
        self.install_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel install")
        self.copy_button = QPushButton("Copy details")
        self.back_button = QPushButton("Back")
        self.close_button = QPushButton("Close")
        self.not_now_button.clicked.connect(self._not_now)
        self.install_button.clicked.connect(self.start_install)
        self.cancel_button.clicked.connect(self.cancel_install)
        self.copy_button.clicked.connect(self.copy_details)
        self.back_button.clicked.connect(self.refresh)
        self.close_button.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.dont_show_box)
        buttons.addStretch()
        for button in (self.copy_button, self.back_button, self.not_now_button, self.cancel_button,
                       self.install_button, self.close_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.status_label)
        layout.addWidget(self.pages, 1)
        layout.addLayout(buttons)

    def _plan_page(self) -> QWidget:
        page = QWidget()
        intro = _wrapping_label("IAMAP runs its deep-learning tools in a Python environment of its own, so QGIS's "
                                "Python is never changed. It is built once, in the background: QGIS stays usable, "
                                "and no restart is needed afterwards.")
        self.build_combo = QComboBox()
        for build in BUILDS:
            self.build_combo.addItem(build.label, build.name)
        self.build_combo.currentIndexChanged.connect(self._build_changed)
        self.build_reason = _wrapping_label()
        self.package_list = QTreeWidget()
        self.package_list.setHeaderLabels(["Package", "Version", "For"])
        self.package_list.setRootIsDecorated(False)
        self.package_list.setColumnWidth(0, 150)
        self.package_list.setColumnWidth(1, 140)
        self.package_list.setMinimumHeight(290)  # IAMAP's 15 requirements without scrolling
        self.dependencies_label = _wrapping_label()
        self.download_label = _wrapping_label()
        self.disk_label = _wrapping_label()
        self.command_label = _wrapping_label()
        for label in (self.download_label, self.disk_label, self.command_label):
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form = QFormLayout()
        form.addRow("PyTorch build:", self.build_combo)
        form.addRow("", self.build_reason)
        form.addRow("Will be installed:", self.package_list)
        form.addRow("", self.dependencies_label)
        form.addRow("Download:", self.download_label)
        form.addRow("Disk:", self.disk_label)
        form.addRow("From a terminal:", self.command_label)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(intro)
        layout.addLayout(form)
        return page

    def _run_page(self) -> QWidget:
        page = QWidget()
        self.stage_label = QLabel()
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 100)
        self.result_label = _wrapping_label()
        self.self_test_view = _wrapping_label()
        self.relevant_view = QPlainTextEdit()
        self.relevant_view.setReadOnly(True)
        self.relevant_view.setMaximumHeight(150)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(5000)
        self.log_view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.log_view.setMinimumHeight(220)
        # follow the end of the log unless the user scrolls up to read (scrolling back down follows again)
        self._follow_log = True
        scroll_bar = self.log_view.verticalScrollBar()
        scroll_bar.actionTriggered.connect(lambda _action: setattr(self, "_follow_log", False))
        scroll_bar.valueChanged.connect(
            lambda value: value == scroll_bar.maximum() and setattr(self, "_follow_log", True))
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.stage_label, self.progress_bar, self.result_label, self.self_test_view,
                       self.relevant_view):
            layout.addWidget(widget)
        layout.addWidget(QLabel("Log:"))
        layout.addWidget(self.log_view, 1)
        return page

    # -- states ----------------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Show what the environment is now and what an install would do (GPU detection runs in the background)."""
        if self.run is not None and self.run.running:
            return
        self.state = "plan"
        status = check_environment(self.env_dir)
        self.complete = status.complete
        self.title.setText("IAMAP's Python environment is ready" if status.complete
                           else "Install IAMAP's Python environment")
        in_use = f"In use: {status.python}" + ("" if status.source == "managed" else f" (set by {status.source})")
        self.status_label.setText(_escape(in_use if status.complete else status.problem))
        self.install_button.setText("Reinstall" if status.complete else "Install")
        self.pages.setCurrentIndex(0)
        self._show_buttons(self.install_button, self.close_button if status.complete else self.not_now_button)
        if self.detected is None:
            self.install_button.setEnabled(False)
            self.build_reason.setText("Looking for an NVIDIA GPU\u2026")
            threading.Thread(target=self._detect, daemon=True).start()
        else:
            self._build_changed()

    def _detect(self) -> None:
        try:
            self._planned.emit(make_plan(self.env_dir, "auto"), "")
        except (EnvironmentProblem, ValueError) as exc:  # no Python to build with; a wrong IAMAP_TORCH_BUILD
            self._planned.emit(None, str(exc))

    def _show_plan(self, plan, problem: str) -> None:
        if plan is None:
            self.build_reason.setText(f"<b>Cannot install:</b> {_escape(problem)}")
            return
        self.detected = plan.choice
        index = self.build_combo.findData(plan.choice.build.name)
        self.build_combo.setItemText(index, f"{plan.choice.build.label} \u2014 recommended here")
        self.build_combo.blockSignals(True)
        self.build_combo.setCurrentIndex(index)
        self.build_combo.blockSignals(False)
        self._build_changed()

    def _build_changed(self) -> None:
        if self.detected is None:
            return
        try:
            self.plan = make_plan(self.env_dir, self.build_combo.currentData())
        except (EnvironmentProblem, ValueError) as exc:
            self.build_reason.setText(f"<b>Cannot install:</b> {_escape(str(exc))}")
            return
        plan, build = self.plan, self.plan.choice.build
        self.build_reason.setText(f"Detected: {_escape(self.detected.reason)}." + (
            "" if build == self.detected.build else " <b>Not the recommended build.</b>"))
        self.package_list.clear()
        for name, version in plan.packages:
            note = f"  ({build.label})" if name.lower() == "torch" else ""
            self.package_list.addTopLevelItem(QTreeWidgetItem([name, f"{version or 'latest'}{note}",
                                                               PURPOSES.get(name, "")]))
        self.dependencies_label.setText(f"and {plan.dependency_count} dependencies; every version is pinned "
                                        "(constraints.txt), so each install gets the same packages.")
        size = plan.size()
        source = index_url(build) if plan.has_torch else None
        self.download_label.setText(
            (f"about {size[0]:g} GB" if size else "not estimated (custom requirements)")
            + (f" \u2014 PyTorch from <code>{_escape(source)}</code>, the rest from the package index" if source
               else " from the package index"))
        self.disk_label.setText(
            (f"about {size[1]:g} GB in " if size else "in ") + f"<code>{_escape(str(plan.env_dir))}</code>"
            + (" (the current environment stays until the new one has passed its self-test)"
               if env_python(plan.env_dir).exists() else ""))
        self.command_label.setText(f"<code>{_escape(plan.display_command())}</code> in the plugin folder "
                                   "does the same")
        self.install_button.setEnabled(True)

    def _show_buttons(self, *visible) -> None:
        for button in (self.not_now_button, self.install_button, self.cancel_button, self.copy_button,
                       self.back_button, self.close_button):
            button.setVisible(button in visible)

    # -- install ---------------------------------------------------------------------------------------------------
    def start_install(self) -> None:
        if self.plan is None or (self.run is not None and self.run.running):
            return
        self.state = "installing"
        self._outcome, self.log_lines = {}, []
        self.log_view.clear()
        self.title.setText("Installing IAMAP's Python environment")
        self.status_label.setText(_escape(f"PyTorch build: {self.plan.choice.build.label}. Into {self.plan.env_dir}"))
        self.stage_label.setText("Starting\u2026")
        self.stage_label.show()
        self.progress_bar.setValue(0)
        for widget in (self.result_label, self.self_test_view, self.relevant_view):
            widget.hide()
        self.progress_bar.show()
        self.pages.setCurrentIndex(1)
        self._show_buttons(self.cancel_button)
        self.cancel_button.setEnabled(True)
        self.run = InstallRun(self.plan.command(force=self.complete, events=True), self)
        self.run.event.connect(self._on_event)
        self.run.line.connect(self._append)
        self.run.ended.connect(self._on_ended)
        self._append("$ " + " ".join(self.run.command))
        try:
            self.run.start()
        except OSError as exc:
            self._outcome = {"type": EventKind.ERROR.value, "message": f"Cannot start {self.run.command[0]}: {exc}"}
            self._on_ended(-1)

    def _append(self, line: str) -> None:
        self.log_lines.append(line)
        self.log_view.appendPlainText(line)
        if self._follow_log:
            self.log_view.verticalScrollBar().setValue(self.log_view.verticalScrollBar().maximum())

    def _on_event(self, event: dict) -> None:
        kind = event.get("type")
        if kind == EventKind.PROGRESS.value:
            self.progress_bar.setValue(int(event.get("percent", 0)))
        elif kind in (EventKind.TEXT.value, EventKind.WARNING.value):
            message = event.get("message", "")
            if message.startswith("== "):
                self.stage_label.setText(message[3:] + "\u2026")
            self._append(message)
        elif kind in (EventKind.ERROR.value, EventKind.RESULT.value):
            self._outcome = event

    def cancel_install(self) -> None:
        if self.run is None or not self.run.running:
            return
        self.state = "cancelling"
        self.cancel_button.setEnabled(False)
        self.stage_label.setText("Cancelling\u2026")
        self.run.cancel()

    def _on_ended(self, exit_status: int) -> None:
        previous = env_python(self.plan.env_dir).exists()
        kept = (f"The previous environment in {self.plan.env_dir} is unchanged and still in use." if previous
                else "Nothing was installed.")
        self.progress_bar.hide()
        self._show_buttons(self.copy_button, self.back_button, self.close_button)
        if self.state == "cancelling":
            # the staging folder and a swap cut short are cleaned up off the GUI thread (a big folder takes a while)
            threading.Thread(target=recover_interrupted_swap, args=(self.plan.env_dir,), daemon=True).start()
            self._finish("cancelled", "Install cancelled", f"pip was stopped. {kept}", ok=False)
        elif self._outcome.get("type") == EventKind.RESULT.value:
            outputs = self._outcome.get("outputs", {})
            self._show_self_test(outputs.get("self_test", []))
            self._finish("succeeded", f"{PASSED} IAMAP's Python environment is ready",
                         f"{outputs.get('python')} passed its self-test. The IAMAP tools use it from now on; no "
                         "restart of QGIS is needed.", ok=True)
        else:
            message = self._outcome.get("message") or f"The install stopped unexpectedly (exit status {exit_status})."
            self._show_self_test(self._outcome.get("self_test", []))
            self.relevant_view.setPlainText("\n".join(self._relevant_lines(message)))
            self.relevant_view.show()
            self._finish("failed", f"{FAILED} The install failed", f"{message}\n\n{kept}", ok=False)

    def _finish(self, state: str, title: str, text: str, ok: bool) -> None:
        self.state = state
        self.title.setText(title)
        self.stage_label.hide()
        self.result_label.setText(_escape(text).replace("\n", "<br>"))
        self.result_label.show()
        self._follow_log = True
        QApplication.processEvents()  # lay out the result first: it shrinks the log, whose end must stay in view
        self.log_view.verticalScrollBar().setValue(self.log_view.verticalScrollBar().maximum())
        self.copy_button.setVisible(state == "failed")
        self.finished_install.emit(ok, title + ". " + text.split("\n")[0])

    def _show_self_test(self, checks: list[dict]) -> None:
        if not checks:
            return
        rows = "".join(f"<tr><td style='color:{'#1a7f37' if c['ok'] else '#c62828'}'>"
                       f"{PASSED if c['ok'] else FAILED}&nbsp;{_escape(c['check'])}</td>"
                       f"<td>&nbsp;{_escape(c['detail'])}</td></tr>" for c in checks)
        self.self_test_view.setText(f"<b>Self-test</b><table>{rows}</table>")
        self.self_test_view.show()

    def _relevant_lines(self, message: str) -> list[str]:
        """The log lines that explain a failure: pip's errors and warnings, then the last lines."""
        markers = ("ERROR", "error", "Error", "WARNING", "Could not", "No matching", "FAILED")
        flagged = [line for line in self.log_lines if any(m in line for m in markers)][-12:]
        tail = [line for line in self.log_lines[-8:] if line not in flagged]
        return ["Relevant lines of the log:", *flagged, "...", *tail]

    def copy_details(self) -> None:
        """Put what a bug report needs on the clipboard: the outcome, the plan, the system and the log's end."""
        lines = [self.title.text(), self.result_label.text().replace("<br>", "\n"), ""]
        lines += [f"{'passed' if c['ok'] else 'FAILED'}: {c['check']}: {c['detail']}"
                  for c in self._outcome.get("self_test", [])]
        lines += ["", *(self.plan.describe() if self.plan else []), f"System: {platform.platform()}",
                  f"QGIS Python: {sys.version.split()[0]}", "", "Log (last 200 lines):", *self.log_lines[-200:]]
        QApplication.clipboard().setText(html.unescape("\n".join(lines)))

    def _not_now(self) -> None:
        self.declined.emit()
        self.close()

    def closeEvent(self, event):  # noqa: N802 (Qt's name)
        """Closing the window does not stop an install: it goes on in the background (Cancel stops it)."""
        event.accept()


def _escape(text) -> str:
    """Text for a rich-text label (quotes left as they are: Qt shows ``&#x27;`` literally in some places)."""
    return html.escape(str(text), quote=False)


def _wrapping_label(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.RichText)
    return label


def _bigger(font: QFont, points: int, bold: bool = False) -> QFont:
    font.setPointSize(font.pointSize() + points)
    font.setBold(bold)
    return font
