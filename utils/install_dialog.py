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
import platform
import sys
import threading

from qgis.PyQt.QtCore import pyqtSignal
from qgis.PyQt.QtWidgets import QApplication, QDialog, QTreeWidgetItem

from ..engine.contract import EventKind
from ..engine.errors import EnvironmentProblem
from ..engine.host.install import recover_interrupted_swap
from ..engine.host.install_plan import InstallPlan, make_plan
from ..engine.host.status import check_environment, env_python
from ..engine.host.torch_build import index_url
from .install_run import InstallRun
from .install_widgets import DONT_SHOW_KEY, PURPOSES, FittedLayout, InstallDialogWidgets, escape

__all__ = ["DONT_SHOW_KEY", "InstallDialog", "InstallRun"]

PASSED, FAILED = "\u2714", "\u2718"
class InstallDialog(FittedLayout, InstallDialogWidgets, QDialog):
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
        self.status_label.setText(escape(in_use if status.complete else status.problem))
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
            self.build_reason.setText(f"<b>Cannot install:</b> {escape(problem)}")
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
            self.build_reason.setText(f"<b>Cannot install:</b> {escape(str(exc))}")
            return
        plan, build = self.plan, self.plan.choice.build
        self.build_reason.setText(f"Detected: {escape(self.detected.reason)}." + (
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
            + (f" \u2014 PyTorch from <code>{escape(source)}</code>, the rest from the package index" if source
               else " from the package index"))
        self.disk_label.setText(
            (f"about {size[1]:g} GB in " if size else "in ") + f"<code>{escape(str(plan.env_dir))}</code>"
            + (" (the current environment stays until the new one has passed its self-test)"
               if env_python(plan.env_dir).exists() else ""))
        self.command_label.setText(f"<code>{escape(plan.display_command())}</code> in the plugin folder "
                                   "does the same")
        self.install_button.setEnabled(True)
        self.fit_layout()

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
        self.status_label.setText(escape(f"PyTorch build: {self.plan.choice.build.label}. Into {self.plan.env_dir}"))
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
        self.result_label.setText(escape(text).replace("\n", "<br>"))
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
                       f"{PASSED if c['ok'] else FAILED}&nbsp;{escape(c['check'])}</td>"
                       f"<td>&nbsp;{escape(c['detail'])}</td></tr>" for c in checks)
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


