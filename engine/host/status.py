"""Host side: the worker's Python environment, where it is, whether it is complete, and how to create or repair it.

This module never runs inside the worker: QGIS's Python (runner, install dialog, diagnostics) and the set-up
scripts import it to find or build the worker's interpreter, with whatever Python they have, so it uses the
standard library only. The managed environment is an isolated venv (no system site-packages, so pip's numpy
never meets QGIS's) built from ``requirements.txt`` pinned by ``constraints.txt``; the build itself is
:mod:`engine.host.install`, the PyTorch build choice :mod:`engine.host.torch_build`.

The command line that installs and checks it is :mod:`engine.host.environment`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import EnvironmentProblem

PLUGIN_DIR = Path(__file__).resolve().parents[2]
REQUIREMENTS = PLUGIN_DIR / "requirements.txt"
CONSTRAINTS = PLUGIN_DIR / "constraints.txt"
DEV_REQUIREMENTS = PLUGIN_DIR / "requirements-dev.txt"
MARKER_NAME = "iamap-environment.json"
#: Set to a Python executable to use it as the worker's interpreter instead of the managed environment.
PYTHON_VARIABLE = "IAMAP_PYTHON"
#: Set to a folder to keep the managed environment there instead of the user's data folder.
DIR_VARIABLE = "IAMAP_ENV_DIR"
#: Set to other requirement / constraint files (a site's own pins; the tests' small requirement sets).
REQUIREMENTS_VARIABLE = "IAMAP_REQUIREMENTS"
CONSTRAINTS_VARIABLE = "IAMAP_CONSTRAINTS"
#: Set to the Python that creates the environment when the one found is not suitable.
BASE_PYTHON_VARIABLE = "IAMAP_BASE_PYTHON"
#: Variables QGIS (or an OSGeo4W shell) sets for its own Python, GDAL and PROJ; the worker's wheels bring their own
#: and break on these.
FOREIGN_VARIABLES = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "GDAL_DATA", "GDAL_DRIVER_PATH", "PROJ_LIB",
                     "PROJ_DATA", "GDAL_PLUGINS", "QT_PLUGIN_PATH")


def requirement_files() -> tuple[Path, Path]:
    """(requirements, constraints) the environment is built from (``IAMAP_REQUIREMENTS``/``_CONSTRAINTS`` override)."""
    return (Path(os.environ.get(REQUIREMENTS_VARIABLE) or REQUIREMENTS),
            Path(os.environ.get(CONSTRAINTS_VARIABLE) or CONSTRAINTS))


def worker_process_environment() -> dict:
    """Environment variables for a process of the worker's Python: QGIS's own Python, GDAL and PROJ settings
    removed, the plugin folder importable, UTF-8 unbuffered output."""
    env = {key: value for key, value in os.environ.items() if key not in FOREIGN_VARIABLES}
    env.update(PYTHONPATH=str(PLUGIN_DIR), PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8")
    return env


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
    """The Python executable of the environment in ``env_dir``."""
    return env_dir / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def install_command_hint() -> str:
    """How to install the environment, for the algorithms' error when it is missing (headless runs included)."""
    if sys.platform == "win32":
        command = f'cd /d "{PLUGIN_DIR}" && python -m engine.host.environment install'
        where = "From the OSGeo4W Shell that comes with QGIS run:"
    else:
        command = f"cd {shlex.quote(str(PLUGIN_DIR))} && python3 -m engine.host.environment install"
        where = "From a terminal run:"
    return (
        "In the QGIS desktop: Plugins > IAMAP > Install / repair environment (the same install dialog opens when "
        f"the plugin loads). {where}  {command}  (it picks CPU-only PyTorch, about 0.6 GB to download, without an "
        "NVIDIA GPU, and the CUDA build the driver supports, about 3.5 GB, with one; --torch-build overrides). "
        f"Or set {PYTHON_VARIABLE} to a Python that has the packages of requirements.txt."
    )


def fingerprint(dev: bool = False) -> str:
    """Hash of what the environment is built from; a change means the environment must be updated.

    Only the requirement lines count: a comment edited in a requirements file does not ask every user to
    download the environment again.
    """
    digest = hashlib.sha256()
    files = [*requirement_files()] + ([DEV_REQUIREMENTS] if dev else [])
    for path in files:
        digest.update(path.name.encode())
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        for line in text.splitlines():
            requirement = line.split("#", 1)[0].strip()
            if requirement:
                digest.update(requirement.encode() + b"\n")
    return digest.hexdigest()[:16]


@dataclass
class EnvironmentStatus:
    """Which Python the worker will use, whether it is ready, and if not why (``problem``)."""

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
    """A Python able to create the venv and run this module's command line, of the running interpreter's version.

    The interpreter's own installation comes first (``sys.base_prefix``): inside QGIS ``sys.executable`` is not
    Python on Windows (``qgis-bin.exe``) nor macOS (the app's binary), and on Linux it is whatever ``python3``
    comes first on PATH (a pyenv shim, say). Then ``sys.executable`` when it is a Python, then PATH.
    ``IAMAP_BASE_PYTHON`` overrides.
    """
    chosen = os.environ.get(BASE_PYTHON_VARIABLE)
    if chosen:
        if not Path(chosen).is_file():
            raise EnvironmentProblem(f"{BASE_PYTHON_VARIABLE} points to {chosen}, which does not exist.")
        return chosen
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    prefix = Path(sys.base_prefix)
    # Linux/macOS framework: bin/pythonX.Y; Windows (OSGeo4W apps/Python3x): python.exe; QGIS.app: MacOS/bin
    beside = [prefix / "bin" / f"python{version}", prefix / "python.exe", prefix / "bin" / "python3",
              Path(sys.executable).parent / "bin" / "python3"]
    for candidate in beside:
        if candidate.is_file():
            return str(candidate)
    if Path(sys.executable).name.lower().startswith("python"):
        return sys.executable
    found = shutil.which(f"python{version}") or shutil.which("python3") or shutil.which("python")
    if not found:
        raise EnvironmentProblem(f"No Python found to create IAMAP's environment: set {BASE_PYTHON_VARIABLE} to "
                                 f"a Python {version} executable.")
    return found
