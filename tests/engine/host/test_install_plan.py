"""What an install will do, without installing: the PyTorch build's commands, packages, sizes and command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.host.status import CONSTRAINTS, REQUIREMENTS, env_python
from engine.host.install_plan import make_plan
from engine.host.torch_build import NvidiaInfo

NO_GPU = NvidiaInfo(None, "no nvidia-smi, no NVIDIA driver files")


@pytest.fixture(autouse=True)
def no_build_override(monkeypatch):
    monkeypatch.delenv("IAMAP_TORCH_BUILD", raising=False)


def test_cpu_plan_installs_torch_from_the_cpu_index_then_the_rest_from_the_package_index(tmp_path):
    plan = make_plan(tmp_path / "env", detect=lambda: NO_GPU)
    assert plan.choice.build.name == "cpu" and plan.requirements == REQUIREMENTS
    venv, pip_upgrade, torch, rest = (step.command for step in plan.steps())
    staging = str(tmp_path / "env.staging")
    assert venv[1:] == ["-m", "venv", "--prompt", "env", staging]
    assert pip_upgrade[0] == str(env_python(Path(staging))) and pip_upgrade[-2:] == ["--upgrade", "pip"]
    assert torch[-6:] == ["--index-url", "https://download.pytorch.org/whl/cpu", "-c", str(CONSTRAINTS), "torch",
                          "torchvision"]
    assert rest[-4:] == ["-r", str(REQUIREMENTS), "-c", str(CONSTRAINTS)] and "--index-url" not in rest
    assert dict(plan.packages)["torch"] == "2.14.1" and plan.size() == (0.6, 2.0)
    # the CPU build pulls none of the CUDA libraries the constraints pin for the default build
    assert plan.dependency_count < make_plan(tmp_path / "env", "default").dependency_count


def test_cuda_plan_uses_the_build_index_and_default_plan_has_no_torch_step(tmp_path):
    cuda = make_plan(tmp_path / "env", detect=lambda: NvidiaInfo("580.65.06", "nvidia-smi", ("H100",), 9.0))
    assert cuda.choice.build.name == "cu130" and cuda.self_test_device() == "cuda"
    assert "https://download.pytorch.org/whl/cu130" in cuda.steps()[2].command
    default = make_plan(tmp_path / "env", "default")
    assert [step.label for step in default.steps()] == ["Creating the environment", "Updating pip",
                                                        "Installing the packages"]
    assert default.self_test_device() == "auto"


def test_install_command_carries_the_plan_choices(tmp_path):
    plan = make_plan(tmp_path / "my env", "cu128", dev=True)
    assert plan.command(force=True, events=True)[1:] == [
        "-m", "engine.host.environment", "install", "--torch-build", "cu128", "--dir", str(tmp_path / "my env"),
        "--dev", "--force", "--events"]
    assert plan.display_command().startswith("python3 -m engine.host.environment install --torch-build cu128 --dir \"")
