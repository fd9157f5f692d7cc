"""What an install of the worker environment will do, computed without installing: the PyTorch build, the packages
with their pinned versions, the sizes, the folder and the commands (:class:`InstallPlan`).

Standard library only. The install dialog shows a plan, ``python3 -m engine.host.environment plan`` prints it, and
:mod:`engine.host.install` carries it out.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from .status import DEV_REQUIREMENTS, REQUIREMENTS, base_python, default_env_dir, env_python, requirement_files
from .self_test import requirement_names
from .torch_build import TORCH_PACKAGES, BuildChoice, build_size, index_url, pip_arguments, resolve_build

STAGING_SUFFIX = ".staging"
PREVIOUS_SUFFIX = ".previous"
#: Pins that only CUDA builds of torch pull in; left out of the counts shown for the other builds.
CUDA_ONLY_PREFIXES = ("nvidia-", "cuda-", "triton")


def pinned_versions(constraints: Path) -> dict[str, str]:
    """``{normalised name: version}`` of a constraints file's ``name==version`` lines."""
    pins = {}
    for line in constraints.read_text(encoding="utf-8").splitlines() if constraints.exists() else []:
        name, _, version = line.split("#", 1)[0].strip().partition("==")
        if version:
            pins[_normalise(name)] = version.strip()
    return pins


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


@dataclass
class Step:
    """One command of the install and the slice of the progress bar it fills."""

    label: str
    command: list[str]
    start: float
    end: float
    expected_packages: int = 0  # "Collecting" lines expected, for progress within the step


@dataclass
class InstallPlan:
    """Everything the install will do, computed without installing (what the dialog and ``plan`` show)."""

    env_dir: Path
    choice: BuildChoice
    requirements: Path
    constraints: Path
    dev: bool = False
    python: str = ""  # the Python that creates the venv (base_python())

    @property
    def staging_dir(self) -> Path:
        return self.env_dir.with_name(self.env_dir.name + STAGING_SUFFIX)

    @property
    def packages(self) -> list[tuple[str, str]]:
        """The requirements with their pinned versions (``""`` when unpinned)."""
        pins = pinned_versions(self.constraints)
        return [(name, pins.get(_normalise(name), "")) for name in requirement_names(self.requirements)]

    @property
    def dependency_count(self) -> int:
        wanted = {_normalise(name) for name, _ in self.packages}
        pins = [name for name in pinned_versions(self.constraints) if name not in wanted]
        if not self.choice.build.uses_gpu and not (self.choice.build.name == "default" and self.has_torch):
            pins = [name for name in pins if not name.startswith(CUDA_ONLY_PREFIXES)]
        return len(pins)

    @property
    def has_torch(self) -> bool:
        return any(_normalise(name) == "torch" for name, _ in self.packages)

    @property
    def torch_packages(self) -> list[str]:
        return [name for name, _ in self.packages if _normalise(name) in TORCH_PACKAGES]

    def size(self) -> tuple[float, float] | None:
        """(download GB, disk GB), known for IAMAP's own requirement set only."""
        if self.requirements != REQUIREMENTS or not self.has_torch:
            return None
        return build_size(self.choice.build)

    def size_text(self) -> str:
        size = self.size()
        if size is None:
            return "not estimated (custom requirements)"
        return f"about {size[0]:g} GB download, {size[1]:g} GB on disk"

    def describe(self) -> list[str]:
        """The lines ``install`` and ``plan`` print first."""
        build = self.choice.build
        packages = ", ".join(f"{name} {version}".strip() for name, version in self.packages)
        lines = [f"PyTorch build: {build.name} - {build.label} ({self.choice.reason})"]
        if self.has_torch:
            lines.append(f"PyTorch from: {index_url(build) or 'the package index (pip default)'}")
        lines += [f"Folder: {self.env_dir}",
                  f"Packages: {packages} (+{self.dependency_count} pinned dependencies)",
                  f"Size: {self.size_text()}",
                  f"Built with: {self.python or base_python()}"]
        return lines

    def command(self, force: bool = False, events: bool = False) -> list[str]:
        """The ``install`` command line of this plan: what the install dialog runs and a terminal user types."""
        command = [self.python or base_python(), "-m", "engine.host.environment", "install", "--torch-build",
                   self.choice.build.name, "--dir", str(self.env_dir)]
        return command + ["--dev"] * self.dev + ["--force"] * force + ["--events"] * events

    def display_command(self) -> str:
        """:meth:`command` as a person types it in the plugin folder (``--dir`` only when not the default)."""
        words = self.command()[1:]
        if self.env_dir == default_env_dir():
            del words[words.index("--dir"):words.index("--dir") + 2]
        python = "python" if sys.platform == "win32" else "python3"
        return " ".join([python, *(f'"{word}"' if " " in word else word for word in words)])

    def steps(self) -> list[Step]:
        python = str(env_python(self.staging_dir))
        pip = [python, "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off"]
        # --prompt: the name the venv's activate scripts show is the final folder's, not the staging one's
        venv = [self.python or base_python(), "-m", "venv", "--prompt", self.env_dir.name, str(self.staging_dir)]
        steps = [Step("Creating the environment", venv, 0, 5),
                 Step("Updating pip", pip + ["--upgrade", "pip"], 5, 10, 1)]
        torch_arguments = pip_arguments(self.choice.build, self.torch_packages, self.constraints)
        start = 10
        if torch_arguments:
            steps.append(Step(f"Installing PyTorch ({self.choice.build.label})", pip + torch_arguments, 10, 45, 12))
            start = 45
        requirements = pip + ["-r", str(self.requirements), "-c", str(self.constraints)]
        if self.dev:
            requirements += ["-r", str(DEV_REQUIREMENTS)]
        expected = max(len(self.packages), len(pinned_versions(self.constraints)) - self.torch_dependencies_skipped())
        steps.append(Step("Installing the packages", requirements, start, 88, expected))
        return steps

    def torch_dependencies_skipped(self) -> int:
        return 0 if self.choice.build.uses_gpu else sum(name.startswith(CUDA_ONLY_PREFIXES)
                                                         for name in pinned_versions(self.constraints))

    def self_test_device(self) -> str:
        return "cuda" if self.choice.build.uses_gpu else "cpu" if self.choice.build.name == "cpu" else "auto"


def make_plan(env_dir: Path | None = None, torch_build: str = "auto", dev: bool = False, detect=None) -> InstallPlan:
    """What ``install`` would do. ``detect`` replaces the NVIDIA detection (tests)."""
    choice = resolve_build(torch_build, detect) if detect else resolve_build(torch_build)
    requirements, constraints = requirement_files()
    return InstallPlan(Path(env_dir) if env_dir else default_env_dir(), choice, requirements, constraints, dev,
                       base_python())
