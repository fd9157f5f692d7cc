"""Host side: the worker's Python environment, where it is, whether it is complete, and how to create or repair it.

This module never runs inside the worker: QGIS's Python (runner, install dialog, diagnostics) and the set-up
scripts import it to find or build the worker's interpreter. Standard library only: the QGIS side (runner, install dialog) and the set-up scripts import this module
with whatever Python they have. The managed environment is an isolated venv (no system site-packages,
so pip's numpy never meets QGIS's) built from ``requirements.txt`` pinned by ``constraints.txt``.

Command line (from the plugin folder)::

    python3 -m engine.host_environment install [--dir DIR] [--dev] [--force]
    python3 -m engine.host_environment check
    python3 -m engine.host_environment python     # prints the worker's python, or fails with the install hint
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .errors import EnvironmentProblem

PLUGIN_DIR = Path(__file__).resolve().parent.parent
REQUIREMENTS = PLUGIN_DIR / "requirements.txt"
CONSTRAINTS = PLUGIN_DIR / "constraints.txt"
DEV_REQUIREMENTS = PLUGIN_DIR / "requirements-dev.txt"
MARKER_NAME = "iamap-environment.json"
#: Set to a Python executable to use it as the worker's interpreter instead of the managed environment.
PYTHON_VARIABLE = "IAMAP_PYTHON"
#: Set to a folder to keep the managed environment there instead of the user's data folder.
DIR_VARIABLE = "IAMAP_ENV_DIR"


def default_env_dir() -> Path:
    """The managed environment's folder, in the user's data folder (overridable with ``IAMAP_ENV_DIR``)."""
    if os.environ.get(DIR_VARIABLE):
        return Path(os.environ[DIR_VARIABLE]).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "iamap" / "worker-env"


def env_python(env_dir: Path) -> Path:
    return env_dir / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def install_command_hint() -> str:
    return (
        "In the QGIS desktop, accept IAMAP's install dialog (shown when the plugin loads). "
        f"From a terminal run:  cd {PLUGIN_DIR} && python3 -m engine.host_environment install  "
        f"(about 7 GB download). Or set {PYTHON_VARIABLE} to a Python that has the packages of requirements.txt."
    )


def fingerprint(dev: bool = False) -> str:
    """Hash of what the environment is built from; a change means the environment must be updated."""
    digest = hashlib.sha256()
    files = [REQUIREMENTS, CONSTRAINTS] + ([DEV_REQUIREMENTS] if dev else [])
    for path in files:
        digest.update(path.name.encode())
        digest.update(path.read_bytes() if path.exists() else b"")
    return digest.hexdigest()[:16]


@dataclass
class EnvironmentStatus:
    python: Path
    complete: bool
    problem: str = ""
    source: str = "managed"  # "managed" or the variable name


def check_environment(env_dir: Path | None = None) -> EnvironmentStatus:
    """Say which Python the worker will use and whether it is ready (no process is started)."""
    override = os.environ.get(PYTHON_VARIABLE)
    if override:
        python = Path(override)
        if not python.exists():
            return EnvironmentStatus(python, False, f"{PYTHON_VARIABLE} points to {python}, which does not exist.",
                                     PYTHON_VARIABLE)
        missing = missing_packages(python)
        if missing:
            return EnvironmentStatus(python, False, f"{PYTHON_VARIABLE} points to {python}, which lacks "
                                                    f"{', '.join(missing)}. Install requirements.txt into it, or "
                                                    f"unset {PYTHON_VARIABLE} to use IAMAP's own environment.",
                                     PYTHON_VARIABLE)
        return EnvironmentStatus(python, True, source=PYTHON_VARIABLE)
    env_dir = Path(env_dir) if env_dir else default_env_dir()
    python = env_python(env_dir)
    marker = env_dir / MARKER_NAME
    if not python.exists():
        return EnvironmentStatus(python, False, f"IAMAP's Python environment is not installed (looked in {env_dir}).")
    try:
        record = json.loads(marker.read_text())
    except (OSError, ValueError):
        return EnvironmentStatus(python, False, f"IAMAP's Python environment in {env_dir} is incomplete "
                                                "(an install did not finish).")
    if record.get("fingerprint") not in (fingerprint(False), fingerprint(True)):
        return EnvironmentStatus(python, False, f"IAMAP's Python environment in {env_dir} was built for another "
                                                "version of the plugin and must be updated.")
    return EnvironmentStatus(python, True)


#: Modules the worker cannot start without (looked up, not imported: a check costs milliseconds, not torch's
#: import time).
REQUIRED_MODULES = ("torch", "timm", "torchgeo", "rasterio", "geopandas", "sklearn", "umap", "hdbscan", "skops",
                    "numpy")
_missing_cache: dict[tuple[str, int], list[str]] = {}


def missing_packages(python: Path) -> list[str]:
    """The :data:`REQUIRED_MODULES` that ``python`` cannot find (cached per interpreter and modification time)."""
    key = (str(python), python.stat().st_mtime_ns)
    if key not in _missing_cache:
        script = ("import importlib.util, sys\n"
                  "print(' '.join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))")
        try:
            result = subprocess.run([str(python), "-c", script, *REQUIRED_MODULES], capture_output=True, text=True,
                                    timeout=60)
            _missing_cache[key] = result.stdout.split() if result.returncode == 0 else ["a working Python"]
        except (OSError, subprocess.TimeoutExpired) as exc:
            _missing_cache[key] = [f"a working Python ({exc})"]
    return _missing_cache[key]


def worker_python() -> Path:
    """The worker's interpreter, or :class:`EnvironmentProblem` saying how to install it."""
    status = check_environment()
    if not status.complete:
        raise EnvironmentProblem(f"{status.problem} {install_command_hint()}")
    return status.python


def base_python() -> str:
    """A Python able to create the venv: this interpreter unless it is embedded (QGIS's own binary)."""
    if Path(sys.executable).name.lower().startswith("python"):
        return sys.executable
    found = shutil.which("python3") or shutil.which("python")
    if not found:
        raise EnvironmentProblem("No python3 found on PATH to create IAMAP's environment.")
    return found


def install(env_dir: Path | None = None, dev: bool = False, force: bool = False,
            log: Callable[[str], None] = print) -> Path:
    """Create or repair the managed environment; return its Python. Does nothing when it is up to date.

    Parameters
    ----------
    env_dir : Path, optional
        Where to build it (default :func:`default_env_dir`).
    dev : bool
        Also install the test requirements (pytest).
    force : bool
        Reinstall even when the marker says the environment is current.
    log : callable
        Receives each line of progress (pip's output included); the install dialog shows them.
    """
    env_dir = Path(env_dir) if env_dir else default_env_dir()
    python = env_python(env_dir)
    marker = env_dir / MARKER_NAME
    wanted = fingerprint(dev)
    if not force and python.exists() and marker.exists():
        try:
            record = json.loads(marker.read_text())
        except ValueError:
            record = {}
        # an environment with the test requirements serves plain use too
        if record.get("fingerprint") in (wanted, fingerprint(True)):
            log(f"IAMAP environment is up to date: {env_dir}")
            return python
    started = time.monotonic()
    marker.unlink(missing_ok=True)  # incomplete until the end
    if not python.exists():
        log(f"Creating the environment in {env_dir}")
        _run([base_python(), "-m", "venv", str(env_dir)], log)
    _run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "--upgrade", "pip"], log)
    command = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off",
               "-r", str(REQUIREMENTS), "-c", str(CONSTRAINTS)]
    if dev:
        command += ["-r", str(DEV_REQUIREMENTS)]
    _run(command, log)
    _run([str(python), "-c", "import torch, timm, torchgeo, rasterio, geopandas, sklearn, umap, hdbscan, skops"], log)
    marker.write_text(json.dumps({"fingerprint": wanted, "dev": dev, "installed": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                  "python": str(python)}))
    log(f"IAMAP environment ready in {time.monotonic() - started:.0f} s: {python}")
    return python


def _run(command: list[str], log: Callable[[str], None]) -> None:
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "PIP_NO_INPUT": "1"})
    assert process.stdout is not None
    for line in process.stdout:
        log(line.rstrip())
    if process.wait() != 0:
        raise EnvironmentProblem(f"Installing IAMAP's environment failed while running: {' '.join(command)} "
                                 f"(exit status {process.returncode}); see the lines above.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m engine.host_environment", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_install = sub.add_parser("install", help="create or repair the managed environment")
    p_install.add_argument("--dir", type=Path, default=None, help="environment folder (default: user data folder)")
    p_install.add_argument("--dev", action="store_true", help="also install the test requirements")
    p_install.add_argument("--force", action="store_true", help="reinstall even when up to date")
    sub.add_parser("check", help="say whether the environment is ready")
    sub.add_parser("python", help="print the worker's python")
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            print(install(args.dir, dev=args.dev, force=args.force, log=lambda s: print(s, flush=True)))
        elif args.command == "check":
            status = check_environment()
            print(f"{'ready' if status.complete else 'NOT READY'}: {status.python} ({status.source}) {status.problem}")
            return 0 if status.complete else 1
        else:
            print(worker_python())
    except EnvironmentProblem as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
