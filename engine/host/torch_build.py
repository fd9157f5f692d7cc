"""Which PyTorch build the worker environment gets: CPU-only, a CUDA build the NVIDIA driver supports, or the
package index's default build; and the pip arguments that fetch it.

Standard library only (the install dialog and the set-up scripts import it). The choice is declarative: a table
of builds (:data:`BUILDS`) and one rule (:func:`choose_build`) reading what :func:`detect_nvidia` found.
Without an NVIDIA GPU the CPU-only build from the PyTorch project's CPU wheel index is much smaller than the
package index's Linux build, which bundles the CUDA libraries.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

#: Set to a build name (``cpu``, ``cu130``, ``default``...) to override the detected choice.
BUILD_VARIABLE = "IAMAP_TORCH_BUILD"
#: Set to the root of a PyTorch wheel index mirror (``<root>/cpu``, ``<root>/cu128``... below it).
INDEX_VARIABLE = "IAMAP_TORCH_INDEX"
PYTORCH_INDEX = "https://download.pytorch.org/whl"
#: The requirements installed from the chosen build's index; everything else comes from the package index.
TORCH_PACKAGES = ("torch", "torchvision")
#: Linux driver version files, read when nvidia-smi is missing (they exist whenever the kernel module is loaded).
DRIVER_FILES = (Path("/proc/driver/nvidia/version"), Path("/sys/module/nvidia/version"))


@dataclass(frozen=True)
class TorchBuild:
    """One PyTorch build.

    Attributes
    ----------
    name : str
        What ``--torch-build`` and the install dialog take (``cpu``, ``cu130``, ``default``).
    label : str
        What the install dialog shows.
    index : str or None
        Sub-folder of the PyTorch wheel index with this build; None: the package index's own wheels.
    download_gb, disk_gb : float
        Approximate size of the whole environment with this build (measured on Linux x86-64, Python 3.11).
    cuda : tuple or None
        CUDA version of a CUDA build.
    min_driver : tuple
        Oldest NVIDIA driver (Linux, Windows) that runs the CUDA build (NVIDIA's minor-version compatibility).
    min_compute_capability : float
        Oldest GPU architecture the PyTorch project compiles this build for.
    """

    name: str
    label: str
    index: str | None
    download_gb: float
    disk_gb: float
    cuda: tuple[int, int] | None = None
    min_driver: tuple[str, str] = ("", "")
    min_compute_capability: float = 0.0

    @property
    def uses_gpu(self) -> bool:
        return self.cuda is not None

    def runs_on(self, driver: str, system: str) -> bool:
        """True when an NVIDIA driver of this version runs this CUDA build (Windows drivers number differently)."""
        return _version(driver) >= _version(self.min_driver[1 if system == "Windows" else 0])


_CUDA_SIZE = {"download_gb": 3.5, "disk_gb": 6.5}
#: Newest first: the first CUDA build the driver and the GPU support is the one chosen. These are the CUDA
#: variants the PyTorch project publishes for the torch version pinned in constraints.txt; update them together.
BUILDS: tuple[TorchBuild, ...] = (
    TorchBuild("cpu", "CPU only", "cpu", download_gb=0.6, disk_gb=2.0),
    TorchBuild("cu130", "CUDA 13.0 (NVIDIA GPU)", "cu130", cuda=(13, 0), min_driver=("580.65.06", "580.88"),
               min_compute_capability=7.5, **_CUDA_SIZE),
    TorchBuild("cu128", "CUDA 12.8 (NVIDIA GPU)", "cu128", cuda=(12, 8), min_driver=("525.60.13", "527.41"),
               min_compute_capability=7.0, **_CUDA_SIZE),
    TorchBuild("cu126", "CUDA 12.6 (NVIDIA GPU, older cards)", "cu126", cuda=(12, 6),
               min_driver=("525.60.13", "527.41"), min_compute_capability=5.0, **_CUDA_SIZE),
    TorchBuild("default", "Package index default (CUDA 13.0 on Linux x86-64, CPU elsewhere)", None,
               **_CUDA_SIZE),
)
BUILD_NAMES = tuple(build.name for build in BUILDS)


def build_named(name: str) -> TorchBuild:
    """The PyTorch build of ``name`` (``cpu``, ``cu128``, ``default``...)."""
    for build in BUILDS:
        if build.name == name:
            return build
    raise ValueError(f"Unknown PyTorch build {name!r}: use auto or one of {', '.join(BUILD_NAMES)}.")


def default_build_bundles_cuda(system: str | None = None, machine: str | None = None) -> bool:
    """True where the package index's torch wheel is the big CUDA build (Linux x86-64); elsewhere it is CPU-only."""
    system = system or platform.system()
    machine = (machine or platform.machine()).lower()
    return system == "Linux" and machine in ("x86_64", "amd64")


def build_size(build: TorchBuild) -> tuple[float, float]:
    """(download GB, disk GB) of the environment with ``build`` on this platform."""
    if build.name == "default" and not default_build_bundles_cuda():
        build = build_named("cpu")
    return build.download_gb, build.disk_gb


@dataclass
class NvidiaInfo:
    """What was found of an NVIDIA GPU: ``driver`` is None when none was; ``source`` says how, or why not."""

    driver: str | None
    source: str
    gpus: tuple[str, ...] = ()
    compute_capability: float | None = None


def _nvidia_smi() -> str | None:
    found = shutil.which("nvidia-smi")
    if found or sys.platform != "win32":
        return found
    # the Windows driver installs it here without always putting it on PATH
    for folder in (Path(os.environ.get("SystemRoot", r"C:\Windows")) / "System32",
                   Path(os.environ.get("ProgramFiles", r"C:\Program Files")) / "NVIDIA Corporation" / "NVSMI"):
        if (folder / "nvidia-smi.exe").exists():
            return str(folder / "nvidia-smi.exe")
    return None


def _query_nvidia_smi(program: str) -> NvidiaInfo | None:
    no_console = {"creationflags": 0x08000000} if sys.platform == "win32" else {}  # CREATE_NO_WINDOW
    # compute_cap is unknown to drivers older than 510: ask again without it
    for fields in ("driver_version,name,compute_cap", "driver_version,name"):
        try:
            result = subprocess.run([program, f"--query-gpu={fields}", "--format=csv,noheader"], capture_output=True,
                                    text=True, timeout=15, stdin=subprocess.DEVNULL, **no_console)
        except (OSError, subprocess.TimeoutExpired):
            return None
        rows = [[cell.strip() for cell in line.split(",")] for line in result.stdout.splitlines() if line.strip()]
        if result.returncode == 0 and rows and re.match(r"\d+\.\d+", rows[0][0]):
            capabilities = [float(row[2]) for row in rows if len(row) > 2 and re.fullmatch(r"\d+\.\d+", row[2])]
            return NvidiaInfo(rows[0][0], "nvidia-smi", tuple(row[1] for row in rows if len(row) > 1),
                              min(capabilities) if capabilities else None)
    return None


def detect_nvidia(driver_files: tuple[Path, ...] = DRIVER_FILES) -> NvidiaInfo:
    """Look for an NVIDIA driver: ``nvidia-smi`` first, then the Linux driver's version files. Never raises."""
    program = _nvidia_smi()
    if program:
        found = _query_nvidia_smi(program)
        if found:
            return found
    for path in driver_files:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        version = re.search(r"\b(\d{3,}\.\d+(?:\.\d+)?)\b", text)
        if version:
            return NvidiaInfo(version.group(1), str(path))
    reason = "nvidia-smi lists none" if program else "no nvidia-smi, no NVIDIA driver files"
    return NvidiaInfo(None, reason)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text))


@dataclass
class BuildChoice:
    """The PyTorch build chosen for this machine, why, and the NVIDIA driver and GPU it was chosen from."""

    build: TorchBuild
    reason: str
    nvidia: NvidiaInfo | None = None


def choose_build(nvidia: NvidiaInfo, system: str | None = None) -> BuildChoice:
    """The newest CUDA build the driver and the GPU support, else the CPU-only build."""
    system = system or platform.system()
    if system == "Darwin":
        return BuildChoice(build_named("default"), "macOS: PyTorch's own build (CPU and Apple GPU)", nvidia)
    if nvidia.driver is None:
        return BuildChoice(build_named("cpu"), f"no NVIDIA GPU found: {nvidia.source}", nvidia)
    found = f"NVIDIA driver {nvidia.driver} ({nvidia.source})"
    cuda_builds = [build for build in BUILDS if build.uses_gpu]
    for build in cuda_builds:
        gpu_supported = nvidia.compute_capability is None or nvidia.compute_capability >= build.min_compute_capability
        if build.runs_on(nvidia.driver, system) and gpu_supported:
            return BuildChoice(build, f"{found} supports CUDA {build.cuda[0]}.{build.cuda[1]}", nvidia)
    if any(build.runs_on(nvidia.driver, system) for build in cuda_builds):
        return BuildChoice(build_named("cpu"), f"{found}, but its GPU (compute capability {nvidia.compute_capability})"
                                               " is older than any PyTorch CUDA build supports", nvidia)
    return BuildChoice(build_named("cpu"), f"{found} is too old for PyTorch's CUDA builds; update the driver "
                                           "to use the GPU", nvidia)


def resolve_build(requested: str = "auto", detect=detect_nvidia) -> BuildChoice:
    """The build for ``requested`` (``auto`` detects; the ``IAMAP_TORCH_BUILD`` variable overrides ``auto``)."""
    requested = (requested or "auto").lower()
    variable = (os.environ.get(BUILD_VARIABLE) or "auto").lower()
    if requested == "auto" and variable != "auto":
        return BuildChoice(build_named(variable), f"set by {BUILD_VARIABLE}")
    if requested != "auto":
        return BuildChoice(build_named(requested), "chosen explicitly")
    return choose_build(detect())


def index_url(build: TorchBuild) -> str | None:
    """The wheel index of ``build`` (``IAMAP_TORCH_INDEX`` moves it), None for the package index's build."""
    if build.index is None:
        return None
    return f"{os.environ.get(INDEX_VARIABLE, PYTORCH_INDEX).rstrip('/')}/{build.index}"


def pip_arguments(build: TorchBuild, packages: list[str], constraints: Path) -> list[str] | None:
    """``pip install`` arguments fetching ``packages`` (the torch family) in ``build``; None when the package
    index's default build is wanted (they are then installed with the other requirements).

    ``--index-url`` rather than an extra index: pip would otherwise pick between both indexes by version alone.
    The index's local version (``2.14.1+cpu``) still satisfies the constraint ``torch==2.14.1``.
    """
    url = index_url(build)
    if url is None or not packages:
        return None
    return ["--index-url", url, "-c", str(constraints), *packages]
