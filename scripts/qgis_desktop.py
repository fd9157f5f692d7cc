"""Run a script inside the real QGIS desktop, under Xvfb, with this checkout as its ``iamap`` plugin and a
throw-away profile: what the GUI tests (tests/qgis/test_install_dialog.py) and scripts/screenshots_install.py share.

The script is QGIS's ``--code`` file: it defines ``body()``, which runs once QGIS has started (main window shown,
plugins loaded), can wait with ``wait_until(predicate, seconds)`` while QGIS keeps processing events, and stores
what it saw in the ``RESULT`` dict; QGIS then exits and :func:`run_desktop` returns ``RESULT``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

PRELUDE = '''
import json, os, sys, time, traceback
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QApplication
from qgis.utils import iface, plugins

RESULT = {}


def wait_until(predicate, seconds=60.0):
    """Process QGIS's events until ``predicate()`` is true; False after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        QApplication.processEvents()
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _run_body_and_quit():
    try:
        body()
    except BaseException:
        RESULT["exception"] = traceback.format_exc()
    with open(RESULT_PATH, "w", encoding="utf-8") as f:
        json.dump(RESULT, f, default=str)
    os._exit(0)  # no "save the project?" question, no slow shutdown


QTimer.singleShot(500, _run_body_and_quit)
'''


#: On QGIS's PYTHONPATH in the tests: logs every warning QGIS's Python shows (see its docstring).
WARNINGS_HOOK = REPO / "tests" / "qgis" / "warnings_hook"


def deprecation_watch(log: Path) -> dict:
    """Environment variables that make QGIS's Python show the deprecation warnings raised in the plugin's own
    modules (``iamap.*``: a deprecated QGIS call made by the plugin) and log them to ``log``."""
    log.unlink(missing_ok=True)
    return {"PYTHONPATH": str(WARNINGS_HOOK), "PYTHONWARNINGS": "default::DeprecationWarning:iamap",
            "IAMAP_WARNINGS_LOG": str(log)}


def plugin_deprecations(log: Path) -> list[str]:
    """The deprecation warnings ``log`` holds that point at a plugin file, as ``file:line: message``."""
    if not log.exists():
        return []
    found = []
    for line in log.read_text(encoding="utf-8").splitlines():
        warning = json.loads(line)
        if "DeprecationWarning" in warning["category"] and "/plugins/iamap/" in warning["file"]:
            found.append(f"{warning['file'].split('/plugins/iamap/')[1]}:{warning['line']}: {warning['message']}")
    return found


def desktop_missing() -> str:
    """Why the desktop cannot be run here ("" when it can)."""
    missing = [program for program in ("qgis", "xvfb-run", "xauth") if not shutil.which(program)]
    return f"not installed: {', '.join(missing)} (scripts/run_tests.sh installs them)" if missing else ""


def prepare_profile(root: Path) -> dict:
    """A plugin folder linking ``iamap`` to this checkout and a HOME whose QGIS profile has the plugin enabled;
    returns the environment variables pointing QGIS at them."""
    plugins, home = root / "plugins", root / "home"
    plugins.mkdir(parents=True, exist_ok=True)
    if not (plugins / "iamap").exists():
        (plugins / "iamap").symlink_to(REPO, target_is_directory=True)
    settings = home / ".local" / "share" / "QGIS" / "QGIS3" / "profiles" / "default" / "QGIS" / "QGIS3.ini"
    if not settings.exists():
        settings.parent.mkdir(parents=True)
        settings.write_text("[PythonPlugins]\niamap=true\n")
    runtime = root / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    return {"HOME": str(home), "QGIS_PLUGINPATH": str(plugins), "XDG_RUNTIME_DIR": str(runtime),
            "QT_QPA_PLATFORM": "xcb"}


def run_desktop(body: str, root: Path, env: dict | None = None, timeout: float = 600) -> dict:
    """Start QGIS under Xvfb in ``root``'s profile, run ``body`` (source defining ``body()``), return RESULT.

    ``env`` is added to this process's environment (after the profile's variables). Raises RuntimeError with
    QGIS's output when QGIS ends without a result.
    """
    root.mkdir(parents=True, exist_ok=True)
    result_path = root / "result.json"
    result_path.unlink(missing_ok=True)
    script = root / "desktop_script.py"
    script.write_text(f"RESULT_PATH = {str(result_path)!r}\n{PRELUDE}\n{body}\n", encoding="utf-8")
    warnings_log = root / "warnings.jsonl"
    full_env = {**os.environ, **prepare_profile(root), **deprecation_watch(warnings_log), **(env or {})}
    command = ["xvfb-run", "-a", "-s", "-screen 0 1280x1024x24", "qgis", "--nologo", "--noversioncheck",
               "--code", str(script)]
    # its own session: on a timeout QGIS and Xvfb go too, not only the xvfb-run script
    process = subprocess.Popen(command, env=full_env, cwd=str(root), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
    if not result_path.exists():
        raise RuntimeError(f"QGIS ended without a result (exit status {process.returncode}):\n{output[-5000:]}")
    deprecated = plugin_deprecations(warnings_log)
    if deprecated:
        raise RuntimeError("the plugin called deprecated QGIS API:\n" + "\n".join(deprecated))
    return json.loads(result_path.read_text(encoding="utf-8"))
