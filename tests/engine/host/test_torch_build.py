"""The PyTorch build choice: what the NVIDIA driver says, which build follows, and the pip arguments fetching it.

The detection runs for real against a stand-in ``nvidia-smi`` on PATH and stand-in driver version files.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from engine.host import torch_build
from engine.host.torch_build import NvidiaInfo, build_named, choose_build, detect_nvidia, pip_arguments, resolve_build


def fake_nvidia_smi(folder: Path, monkeypatch, output: str, without_compute_cap: str | None = None) -> None:
    """Put an ``nvidia-smi`` on PATH printing ``output`` (or failing on compute_cap, as drivers before 510 do)."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "nvidia-smi"
    if without_compute_cap is None:
        script.write_text(f"#!/bin/sh\nprintf '%s\\n' '{output}'\n")
    else:
        script.write_text("#!/bin/sh\ncase \"$1\" in *compute_cap*) echo 'Field \"compute_cap\" is not a valid field "
                          f"to query.' >&2; exit 2;; esac\nprintf '%s\\n' '{without_compute_cap}'\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")


def test_nvidia_smi_gives_driver_gpus_and_the_oldest_compute_capability(tmp_path, monkeypatch):
    fake_nvidia_smi(tmp_path, monkeypatch, "580.65.06, NVIDIA H100 80GB HBM3, 9.0\n580.65.06, Tesla T4, 7.5")
    found = detect_nvidia(driver_files=())
    assert found == NvidiaInfo("580.65.06", "nvidia-smi", ("NVIDIA H100 80GB HBM3", "Tesla T4"), 7.5)


def test_an_old_driver_without_compute_cap_is_asked_again_without_it(tmp_path, monkeypatch):
    fake_nvidia_smi(tmp_path, monkeypatch, "", without_compute_cap="470.182.03, Tesla K80")
    found = detect_nvidia(driver_files=())
    assert (found.driver, found.gpus, found.compute_capability) == ("470.182.03", ("Tesla K80",), None)


def test_linux_driver_file_is_read_when_there_is_no_nvidia_smi(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    version_file = tmp_path / "version"
    version_file.write_text("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.14  Release Build  "
                            "(dvs-builder@U16-I3-B03-4-3)  Thu Feb 22 01:25:25 UTC 2024\nGCC version:  gcc 12.2.0\n")
    found = detect_nvidia(driver_files=(tmp_path / "missing", version_file))
    assert (found.driver, found.source) == ("550.54.14", str(version_file))


def test_no_driver_anywhere_says_what_was_looked_for(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    found = detect_nvidia(driver_files=(tmp_path / "missing",))
    assert found.driver is None and found.source == "no nvidia-smi, no NVIDIA driver files"
    choice = choose_build(found, system="Linux")
    assert choice.build.name == "cpu" and choice.reason == "no NVIDIA GPU found: no nvidia-smi, no NVIDIA driver files"


@pytest.mark.parametrize("driver, capability, system, expected", [
    ("580.65.06", 9.0, "Linux", "cu130"),      # CUDA 13 driver, Hopper
    ("580.65.06", 7.0, "Linux", "cu128"),      # CUDA 13 dropped Volta: the newest build that still has it
    ("580.65.06", 6.1, "Linux", "cu126"),      # Pascal: only the CUDA 12.6 build still compiles for it
    ("550.54.14", 8.6, "Linux", "cu128"),      # CUDA 12 driver: 12.x builds through minor-version compatibility
    ("550.54.14", None, "Linux", "cu128"),     # capability unknown (driver file): driver alone decides
    ("525.60.13", 8.0, "Linux", "cu128"),      # exactly the oldest CUDA 12 driver
    ("525.60.12", 8.0, "Linux", "cpu"),        # one below: no CUDA build runs
    ("470.182.03", 3.7, "Linux", "cpu"),
    ("580.65.06", 3.7, "Linux", "cpu"),        # a new driver on a Kepler card
    ("527.41", 8.6, "Windows", "cu128"),       # Windows has its own driver numbers
    ("526.98", 8.6, "Windows", "cpu"),
    ("581.15", 8.9, "Windows", "cu130"),
])
def test_the_newest_cuda_build_the_driver_and_gpu_support_is_chosen(driver, capability, system, expected):
    choice = choose_build(NvidiaInfo(driver, "nvidia-smi", ("GPU",), capability), system=system)
    assert choice.build.name == expected
    if expected == "cpu":
        assert driver in choice.reason
        assert ("older than any PyTorch CUDA build" if driver.startswith("580") else "too old") in choice.reason
    else:
        assert driver in choice.reason and f"CUDA {choice.build.cuda[0]}.{choice.build.cuda[1]}" in choice.reason


def test_macos_gets_the_package_index_build():
    assert choose_build(NvidiaInfo(None, "no nvidia-smi"), system="Darwin").build.name == "default"


def test_explicit_choice_and_the_variable_override_detection(monkeypatch):
    def never(): raise AssertionError("detection must not run when the build is given")

    assert resolve_build("cu126", detect=never).build.name == "cu126"
    monkeypatch.setenv("IAMAP_TORCH_BUILD", "")  # set but empty, as a shell's VAR= leaves it: detection
    assert resolve_build("auto", detect=lambda: NvidiaInfo(None, "none")).build.name == "cpu"
    monkeypatch.setenv("IAMAP_TORCH_BUILD", "default")
    choice = resolve_build("auto", detect=never)
    assert (choice.build.name, choice.reason) == ("default", "set by IAMAP_TORCH_BUILD")
    with pytest.raises(ValueError, match="Unknown PyTorch build 'cu99'.*cpu, cu130"):
        resolve_build("cu99")


def test_pip_arguments_fetch_the_torch_family_from_the_build_index(tmp_path, monkeypatch):
    constraints = tmp_path / "constraints.txt"
    assert pip_arguments(build_named("cpu"), ["torch", "torchvision"], constraints) == [
        "--index-url", "https://download.pytorch.org/whl/cpu", "-c", str(constraints), "torch", "torchvision"]
    assert pip_arguments(build_named("cu128"), ["torch"], constraints)[:2] == [
        "--index-url", "https://download.pytorch.org/whl/cu128"]
    assert pip_arguments(build_named("default"), ["torch"], constraints) is None  # with the other requirements
    assert pip_arguments(build_named("cpu"), [], constraints) is None  # no torch in the requirement set
    monkeypatch.setenv("IAMAP_TORCH_INDEX", "https://mirror.example.org/pytorch/")
    assert pip_arguments(build_named("cpu"), ["torch"], constraints)[1] == "https://mirror.example.org/pytorch/cpu"


def test_builds_table_is_ordered_newest_cuda_first_with_sizes():
    cuda = [build for build in torch_build.BUILDS if build.uses_gpu]
    assert [build.cuda for build in cuda] == sorted((build.cuda for build in cuda), reverse=True)
    cpu, default = build_named("cpu"), build_named("default")
    assert cpu.download_gb < default.download_gb and cpu.disk_gb < default.disk_gb
    assert torch_build.build_size(default) == ((default.download_gb, default.disk_gb)
                                               if torch_build.default_build_bundles_cuda() else
                                               (cpu.download_gb, cpu.disk_gb))
    assert torch_build.default_build_bundles_cuda("Windows", "AMD64") is False
