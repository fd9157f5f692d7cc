"""The install dialog in the real QGIS desktop (under Xvfb, throw-away profile): shown after start-up when the
environment is missing, not when it is complete; what it lists; an install, a cancel and a failure through it,
with small requirement sets through the same code path as the real install."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from testsupport.requirement_sets import SIX_VERSION, broken_set, six_set, slow_set
from .conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))
import qgis_desktop

pytestmark = [pytest.mark.qgis, pytest.mark.slow]

FOUND_DIALOG = """
from qgis.core import QgsSettings
from qgis.PyQt.QtWidgets import QPushButton


def dialog_ready():
    plugin = plugins["iamap"]
    return plugin.install_dialog is not None and plugin.install_dialog.install_button.isEnabled()


def describe(dialog):
    return {"visible": dialog.isVisible(), "modal": dialog.isModal(), "state": dialog.state,
            "title": dialog.title.text(), "status": dialog.status_label.text(),
            "build": dialog.build_combo.currentData(), "build_label": dialog.build_combo.currentText(),
            "reason": dialog.build_reason.text(), "download": dialog.download_label.text(),
            "disk": dialog.disk_label.text(), "command": dialog.command_label.text(),
            "packages": [[dialog.package_list.topLevelItem(i).text(c) for c in range(3)]
                         for i in range(dialog.package_list.topLevelItemCount())],
            "log": "\\n".join(dialog.log_lines), "result": dialog.result_label.text(),
            "self_test": dialog.self_test_view.text() if dialog.self_test_view.isVisible() else "",
            "relevant": dialog.relevant_view.toPlainText() if dialog.relevant_view.isVisible() else "",
            "buttons": [b.text() for b in dialog.findChildren(QPushButton) if b.isVisible()]}


def install_and_wait(dialog, seconds=300):
    dialog.install_button.click()
    return wait_until(lambda: dialog.state in ("succeeded", "failed", "cancelled"), seconds)
"""


@pytest.fixture
def desktop(qgis, tmp_path):
    """Runs a body in the QGIS desktop with the plugin and no worker environment but the one a test makes."""
    if qgis_desktop.desktop_missing():
        pytest.fail(f"QGIS desktop tests: {qgis_desktop.desktop_missing()}")
    env = {key: value for key, value in qgis.env.items() if key not in ("HOME", "QT_QPA_PLATFORM")}
    env.update(IAMAP_PYTHON="", IAMAP_ENV_DIR=str(tmp_path / "worker env"), IAMAP_TORCH_BUILD="")

    def run(body: str, extra: dict | None = None, profile: str = "profile", timeout: float = 400) -> dict:
        result = qgis_desktop.run_desktop(FOUND_DIALOG + body, tmp_path / profile, {**env, **(extra or {})}, timeout)
        assert "exception" not in result, result["exception"]
        return result

    return run


def test_dialog_appears_after_start_up_lists_the_install_and_not_now_leaves_an_install_button(desktop):
    result = desktop("""
def body():
    RESULT["found"] = wait_until(dialog_ready, 60)
    dialog = plugins["iamap"].install_dialog
    RESULT["main_window_visible"] = iface.mainWindow().isVisible()
    RESULT["modal_widget"] = str(QApplication.activeModalWidget())
    RESULT.update(describe(dialog))
    dialog.dont_show_box.setChecked(True)
    dialog.not_now_button.click()
    RESULT["closed"] = not dialog.isVisible()
    bar = iface.messageBar()
    RESULT["bar"] = [(item.text(), [b.text() for b in item.findChildren(QPushButton)]) for item in bar.items()]
    RESULT["dont_show"] = QgsSettings().value("iamap/install_dialog/dont_show_at_startup", False, type=bool)
    install = [b for item in bar.items() for b in item.findChildren(QPushButton) if b.text() == "Install\u2026"][0]
    install.click()  # the message bar's button brings the dialog back
    RESULT["reopened"] = dialog.isVisible() and not bar.items()
    RESULT["menu"] = [action.text() for action in plugins["iamap"].actions]
    RESULT["menu_icon"] = [not a.icon().isNull() for a in iface.pluginMenu().actions() if a.text() == "&IAMAP"]
""")
    assert (result["found"] and result["visible"] and not result["modal"]
            and result["modal_widget"] == "None"), str(result)
    assert result["main_window_visible"]
    assert result["title"] == "Install IAMAP's Python environment"
    assert "not installed" in result["status"] and "worker env" in result["status"]
    assert result["build"] == "cpu" and result["build_label"] == "CPU only \u2014 recommended here"
    assert "no NVIDIA GPU found" in result["reason"]
    packages = {name: (version, purpose) for name, version, purpose in result["packages"]}
    assert list(packages)[:3] == ["torch", "torchvision", "timm"]
    assert packages["torch"] == ("2.14.1  (CPU only)", "deep-learning engine")
    assert packages["scikit-learn"][0] == "1.9.1" and len(packages) >= 15
    assert "about 0.6 GB" in result["download"] and "download.pytorch.org/whl/cpu" in result["download"]
    assert "about 2 GB in" in result["disk"] and "worker env" in result["disk"]
    assert "python3 -m engine.host.environment install --torch-build cpu" in result["command"]
    assert result["buttons"] == ["Not now", "Install"]
    assert result["closed"] and result["dont_show"] and result["reopened"]
    assert result["bar"] == [["Its Python environment is not ready: the IAMAP tools need it.", ["Install\u2026"]]]
    assert result["menu"] == ["Install / repair environment\u2026", "Diagnostics\u2026", "Documentation", "Sample data",
                              "Similarity explorer (click on a feature raster)\u2026"]
    assert result["menu_icon"] == [True]  # the Plugins > IAMAP submenu has the plugin's icon

    again = desktop("""
def body():
    wait_until(lambda: False, 4)  # start-up and the moment the dialog would have opened
    RESULT["dialog"] = plugins["iamap"].install_dialog is not None
    RESULT["bar"] = len(iface.messageBar().items())
""")
    assert again == {"dialog": False, "bar": 0}  # "Don't show again" was remembered (same profile)


LAYOUT = """
from qgis.PyQt.QtCore import QPoint, QRect
from qgis.PyQt.QtWidgets import (QCheckBox, QComboBox, QLabel, QPlainTextEdit, QProgressBar, QPushButton,
                                 QTreeWidget)


def layout_problems(dialog):
    \"\"\"What is drawn wrong at the dialog's current size: visible widgets that overlap, stick out of the dialog,
    or labels shorter than their wrapped text (all of it must show).\"\"\"
    kinds = (QLabel, QTreeWidget, QComboBox, QPushButton, QCheckBox, QProgressBar, QPlainTextEdit)
    widgets = [w for w in dialog.findChildren(kinds) if w.isVisible() and w.parent() is not None
               and not isinstance(w.parent(), kinds) and (not isinstance(w, QLabel) or w.text())]
    rects = {id(w): QRect(w.mapTo(dialog, QPoint(0, 0)), w.size()) for w in widgets}
    def name(w):
        return f"{type(w).__name__}({(w.text() if hasattr(w, 'text') else '')[:40]!r})"
    problems = []
    for i, a in enumerate(widgets):
        if not dialog.rect().contains(rects[id(a)]):
            problems.append(f"{name(a)} outside the dialog")
        if isinstance(a, QLabel) and a.wordWrap() and a.height() < a.heightForWidth(a.width()):
            problems.append(f"{name(a)} is {a.height()} px high for {a.heightForWidth(a.width())} px of text")
        for b in widgets[i + 1:]:
            if rects[id(a)].intersects(rects[id(b)]):
                problems.append(f"{name(a)} overlaps {name(b)}")
    return problems
"""


def test_the_dialog_at_its_opening_size_draws_nothing_over_anything_and_says_what_each_package_is_for(desktop):
    result = desktop(LAYOUT + """
def body():
    wait_until(dialog_ready, 60)
    dialog = plugins["iamap"].install_dialog
    wait_until(lambda: False, 1)  # laid out with the plan shown
    RESULT["size"] = [dialog.width(), dialog.height()]
    RESULT["problems"] = layout_problems(dialog)
    RESULT["rows_hidden"] = dialog.package_list.verticalScrollBar().maximum()
    RESULT.update(describe(dialog))
    dialog.resize(dialog.minimumWidth(), dialog.minimumHeight())  # the smallest the user can make it
    wait_until(lambda: False, 0.5)
    RESULT["smallest"] = [dialog.width(), dialog.height()]
    RESULT["problems_smallest"] = layout_problems(dialog)
""")
    assert result["problems"] == [], result["size"]
    assert result["problems_smallest"] == [], result["smallest"]
    assert result["rows_hidden"] == 0  # every package shows at the opening size, without scrolling
    packages = {name: purpose for name, _, purpose in result["packages"]}
    assert len(packages) >= 18 and {name for name, purpose in packages.items() if not purpose} == set()
    assert packages["matplotlib"] == "the pictures of the ml report"


def install_six(env_dir: Path, folder: Path) -> dict:
    """Install the ``six`` set into ``env_dir`` with the headless command; return its environment variables."""
    six = six_set(folder)
    installed = subprocess.run(["/usr/bin/python3", "-m", "engine.host.environment", "install", "--dir", str(env_dir)],
                               cwd=str(REPO), env={**os.environ, **six}, capture_output=True, text=True)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return six


def test_no_dialog_when_the_environment_is_complete_and_the_menu_opens_it_ready(desktop, tmp_path):
    env_dir = tmp_path / "worker env"
    six = install_six(env_dir, tmp_path / "six")
    result = desktop("""
def body():
    wait_until(lambda: False, 4)
    plugin = plugins["iamap"]
    RESULT["dialog_at_start"] = plugin.install_dialog is not None
    RESULT["bar"] = [(item.title(), item.text()) for item in iface.messageBar().items()]
    plugin.actions[0].trigger()  # Plugins > IAMAP > Install / repair environment
    wait_until(dialog_ready, 30)
    RESULT.update(describe(plugin.install_dialog))
    plugin.actions[3].trigger()  # Sample data
    from qgis.core import QgsProject
    RESULT["layers"] = sorted((layer.name(), layer.isValid()) for layer in QgsProject.instance().mapLayers().values())
""", six)
    assert result["dialog_at_start"] is False and result["bar"] == []
    assert result["visible"] and result["title"] == "IAMAP's Python environment is ready"
    assert result["status"] == f"In use: {env_dir / 'bin' / 'python'}"
    assert result["buttons"] == ["Reinstall", "Close"]
    assert result["packages"] == [["six", SIX_VERSION, ""]]
    assert result["layers"] == [["IAMAP sample (RGB)", True], ["IAMAP sample river points", True]]


def test_install_through_the_dialog_shows_pip_output_and_the_self_test_without_restart(desktop, tmp_path):
    result = desktop("""
def body():
    wait_until(dialog_ready, 60)
    dialog = plugins["iamap"].install_dialog
    progress = []
    dialog.progress_bar.valueChanged.connect(progress.append)
    RESULT["finished"] = install_and_wait(dialog)
    RESULT.update(describe(dialog))
    RESULT["progress"] = progress
    from iamap.engine.host.status import check_environment, worker_python
    RESULT["complete_now"] = check_environment().complete
    RESULT["worker_python"] = str(worker_python())  # what the Processing tools use, in this same session
""", six_set(tmp_path / "six"))
    assert result["finished"] and result["state"] == "succeeded", result["log"][-3000:] + result["result"]
    log = result["log"]
    assert "--events" in log.splitlines()[0] and "--torch-build cpu" in log.splitlines()[0]
    assert "== Creating the environment" in log and "Collecting six" in log
    assert f"Successfully installed six-{SIX_VERSION}" in log  # pip's own output, live in the dialog's log
    assert f"imports</td><td>&nbsp;six {SIX_VERSION}" in result["self_test"]
    assert "forward pass" in result["self_test"] and "skipped: torch is not in the requirement set" in \
        result["self_test"]
    assert "passed its self-test" in result["result"] and "no restart of QGIS is needed" in result["result"]
    assert result["title"] == "\u2714 IAMAP's Python environment is ready"
    assert result["complete_now"] and result["worker_python"] == str(tmp_path / "worker env" / "bin" / "python")
    assert result["progress"][-1] == 100 and len(set(result["progress"])) > 3
    assert result["buttons"] == ["Back", "Close"]


def test_cancel_mid_install_ends_pip_and_keeps_the_old_environment(desktop, tmp_path):
    env_dir = tmp_path / "worker env"
    six = install_six(env_dir, tmp_path / "six")
    marker = (env_dir / "iamap-environment.json").read_text()
    slow, pid_file = slow_set(tmp_path / "slow")  # a plugin update whose install takes long: the env is outdated
    result = desktop(f"""
def body():
    wait_until(dialog_ready, 60)
    dialog = plugins["iamap"].install_dialog
    RESULT["status_before"] = dialog.status_label.text()
    dialog.install_button.click()
    RESULT["backend_started"] = wait_until(lambda: os.path.exists({str(pid_file)!r}), 120)
    RESULT["backend_pid"] = int(open({str(pid_file)!r}).read())
    RESULT["command_pid"] = dialog.run.process.pid
    clicked = time.monotonic()
    dialog.cancel_button.click()
    RESULT["cancelled"] = wait_until(lambda: dialog.state == "cancelled", 30)
    RESULT["seconds"] = time.monotonic() - clicked
    RESULT["staging_removed"] = wait_until(lambda: not os.path.exists({str(env_dir) + '.staging'!r}), 30)
    RESULT.update(describe(dialog))
""", slow)
    assert "must be updated" in result["status_before"]
    assert result["backend_started"] and result["cancelled"] and result["seconds"] < 10
    for pid in (result["backend_pid"], result["command_pid"]):  # pip's build back-end and the install command
        assert not alive(pid)
    assert str(env_dir) + ".staging" not in subprocess.run(["ps", "-eo", "args"], capture_output=True,
                                                           text=True).stdout
    assert result["staging_removed"]
    assert result["title"] == "Install cancelled"
    assert f"The previous environment in {env_dir} is unchanged" in result["result"]
    # the old environment is as it was, and works
    assert (env_dir / "iamap-environment.json").read_text() == marker
    works = subprocess.run([str(env_dir / "bin" / "python"), "-c", "import six; print(six.__version__)"],
                           capture_output=True, text=True)
    assert works.stdout.strip() == SIX_VERSION
    check = subprocess.run(["/usr/bin/python3", "-m", "engine.host.environment", "check"], cwd=str(REPO),
                           env={**os.environ, **six, "IAMAP_ENV_DIR": str(env_dir), "IAMAP_PYTHON": ""},
                           capture_output=True, text=True)
    assert check.stdout.startswith("ready:"), check.stdout


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, dead but not yet reaped by its new parent, is not alive)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def test_failed_self_test_shows_the_checks_relevant_lines_and_copies_details(desktop, tmp_path):
    result = desktop("""
def body():
    wait_until(dialog_ready, 60)
    dialog = plugins["iamap"].install_dialog
    RESULT["finished"] = install_and_wait(dialog)
    RESULT.update(describe(dialog))
    dialog.copy_button.click()
    RESULT["clipboard"] = QApplication.clipboard().text()
""", broken_set(tmp_path / "broken"))
    assert result["finished"] and result["state"] == "failed"
    assert result["title"] == "\u2718 The install failed"
    assert "failed its self-test, so it was not put in place" in result["result"]
    assert "Nothing was installed." in result["result"]
    assert "brokenpkg is broken on purpose" in result["self_test"]
    assert result["relevant"].startswith("Relevant lines of the log:")
    assert "Self-test FAILED: imports" in result["relevant"]
    assert result["buttons"] == ["Copy details", "Back", "Close"]
    clipboard = result["clipboard"]
    assert "FAILED: imports: cannot import brokenpkg" in clipboard and "PyTorch build: cpu" in clipboard
    assert "Successfully installed brokenpkg-1.0" in clipboard and "QGIS Python: 3." in clipboard
    assert not (tmp_path / "worker env").exists()


def test_headless_qgis_process_never_shows_a_dialog_and_keeps_the_tools(qgis, tmp_path):
    no_env = {"IAMAP_PYTHON": "", "IAMAP_ENV_DIR": str(tmp_path / "nothing-here")}
    script = """
        from qgis.core import QgsApplication
        from qgis.PyQt.QtWidgets import QApplication
        plugin.initGui()  # what a script calling it would do: iface is None, so nothing but Processing
        print("DIALOG", plugin.install_dialog, "WINDOWS", [w for w in QApplication.topLevelWidgets() if w.isVisible()])
        print("TOOLS", sorted(a.id() for a in QgsApplication.processingRegistry().providerById("iamap").algorithms()))
        """
    result = qgis.pyqgis(script, env=no_env)
    assert "DIALOG None WINDOWS []" in result.stdout, result.stdout + result.stderr
    assert "'iamap:encoder'" in result.stdout and "'iamap:diagnostics'" in result.stdout
