"""Building the worker environment: the headless command's output, and real installs of small requirement sets
into temporary folders (never the shared environment): pip's output, the self-test, the swap, failures."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from engine.host import install as installer
from engine.host.install import install, recover_interrupted_swap
from engine.errors import EnvironmentProblem
from engine.events import Reporter
from engine.host.status import MARKER_NAME, PLUGIN_DIR, check_environment, env_python
from engine.host.install_plan import make_plan

from testsupport.requirement_sets import SIX_VERSION, broken_set, six_set
from .test_torch_build import fake_nvidia_smi


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """Every test here works in its own folder, whatever it forgets to pass."""
    monkeypatch.delenv("IAMAP_PYTHON", raising=False)
    monkeypatch.delenv("IAMAP_TORCH_BUILD", raising=False)
    monkeypatch.setenv("IAMAP_ENV_DIR", str(tmp_path / "default-env"))


def command(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python3 -m engine.host.environment ARGS`` as a user runs it, from the plugin folder."""
    return subprocess.run(["/usr/bin/python3", "-m", "engine.host.environment", *args], cwd=str(PLUGIN_DIR),
                          capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=600)


def test_headless_plan_prints_the_cpu_choice_and_why(tmp_path):
    if Path("/proc/driver/nvidia/version").exists():
        pytest.skip("this machine has an NVIDIA driver")
    result = command("plan", env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "PyTorch build: cpu - CPU only (no NVIDIA GPU found: no nvidia-smi, no NVIDIA driver files)"
    assert "PyTorch from: https://download.pytorch.org/whl/cpu" in lines
    assert any(line.startswith("Size: about 0.6 GB download, 2 GB on disk") for line in lines)


def test_headless_plan_prints_the_cuda_build_the_driver_supports(tmp_path, monkeypatch):
    fake_nvidia_smi(tmp_path / "bin", monkeypatch, "550.54.14, NVIDIA RTX A4000, 8.6")
    result = command("plan")
    assert result.stdout.splitlines()[0] == ("PyTorch build: cu128 - CUDA 12.8 (NVIDIA GPU) (NVIDIA driver 550.54.14 "
                                             "(nvidia-smi) supports CUDA 12.8)")
    explicit = command("plan", "--torch-build", "cpu").stdout
    assert explicit.startswith("PyTorch build: cpu - CPU only (chosen explicitly)")


def test_headless_install_of_a_small_set_prints_its_choice_pip_output_and_self_test(tmp_path):
    env_dir = tmp_path / "env with spaces"
    result = command("install", "--dir", str(env_dir), env=six_set(tmp_path / "six"))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert out.startswith("PyTorch build: ")
    assert f"Successfully installed six-{SIX_VERSION}" in out  # pip's own output, relayed
    assert f"Self-test passed: imports: six {SIX_VERSION}" in out
    assert out.splitlines()[-1] == str(env_python(env_dir))
    record = json.loads((env_dir / MARKER_NAME).read_text())
    assert record["self_test"][0] == {"check": "imports", "ok": True, "detail": f"six {SIX_VERSION}"}
    assert not (tmp_path / "env with spaces.staging").exists()
    # moved from the staging folder: the venv's own scripts point at the final folder
    pip = subprocess.run([str(env_dir / "bin" / "pip"), "--version"], capture_output=True, text=True)
    assert pip.returncode == 0 and str(env_dir) in pip.stdout
    again = command("install", "--dir", str(env_dir), env=six_set(tmp_path / "six"))
    assert "IAMAP environment is up to date" in again.stdout


def test_events_mode_writes_json_lines_with_progress_and_result(tmp_path):
    result = command("install", "--events", "--dir", str(tmp_path / "env"), env=six_set(tmp_path / "six"))
    events = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = {event["type"] for event in events}
    assert kinds == {"text", "progress", "result"}
    percents = [event["percent"] for event in events if event["type"] == "progress"]
    assert percents == sorted(percents) and percents[-1] == 100
    assert events[-1]["outputs"]["self_test"][0]["ok"] is True


def test_failed_self_test_keeps_the_previous_environment(tmp_path, monkeypatch):
    env_dir = tmp_path / "env"
    for key, value in six_set(tmp_path / "six").items():
        monkeypatch.setenv(key, value)
    install(make_plan(env_dir, "cpu"))
    marker = (env_dir / MARKER_NAME).read_text()
    for key, value in broken_set(tmp_path / "broken").items():
        monkeypatch.setenv(key, value)
    reporter = Reporter()
    with pytest.raises(EnvironmentProblem, match="failed its self-test.*brokenpkg: ImportError") as info:
        install(make_plan(env_dir, "cpu"), reporter, force=True)
    assert [check["ok"] for check in info.value.self_test] == [False, True, True]
    assert any("Successfully installed brokenpkg-1.0" in event.get("message", "") for event in reporter.events)
    assert (env_dir / MARKER_NAME).read_text() == marker and not (tmp_path / "env.staging").exists()
    still = subprocess.run([str(env_python(env_dir)), "-c", "import six; print(six.__version__)"],
                           capture_output=True, text=True)
    assert still.stdout.strip() == SIX_VERSION


def test_a_failing_pip_step_names_the_step_and_shows_pip_errors(tmp_path, monkeypatch):
    for key, value in six_set(tmp_path / "six").items():
        monkeypatch.setenv(key, value)
    (tmp_path / "six" / "requirements.txt").write_text(f"{(tmp_path / 'no-such-folder').as_uri()}\n")
    with pytest.raises(EnvironmentProblem, match=r"Installing the packages failed \(exit status 1\)\.\n.*ERROR"):
        install(make_plan(tmp_path / "env", "cpu"))
    assert not env_python(tmp_path / "env").exists()


def test_a_swap_cut_short_is_undone_or_finished(tmp_path):
    env_dir, previous = tmp_path / "env", tmp_path / "env.previous"
    previous.mkdir()
    (previous / "kept").write_text("old")
    (tmp_path / "env.staging").mkdir()
    recover_interrupted_swap(env_dir)  # killed between the two renames: the old one comes back
    assert (env_dir / "kept").read_text() == "old" and not previous.exists()
    assert not (tmp_path / "env.staging").exists()
    previous.mkdir()
    recover_interrupted_swap(env_dir)  # killed after both renames: only the old copy is left to remove
    assert (env_dir / "kept").exists() and not previous.exists()


def test_check_follows_the_requirement_files_in_use(tmp_path, monkeypatch):
    env_dir = tmp_path / "env"
    for key, value in six_set(tmp_path / "six").items():
        monkeypatch.setenv(key, value)
    install(make_plan(env_dir, "cpu"))
    assert check_environment(env_dir).complete
    (tmp_path / "six" / "constraints.txt").write_text("six==1.17.0\n")  # a plugin update changing a pin
    assert "must be updated" in check_environment(env_dir).problem


def test_console_reporter_prints_progress_in_tenths(capsys):
    reporter = installer.ConsoleReporter()
    for percent in (0, 3, 12, 19, 55, 100):
        reporter.progress(percent, force=True)
    assert capsys.readouterr().out.splitlines() == ["[  0 %]", "[ 10 %]", "[ 50 %]", "[100 %]"]


def test_self_test_command_checks_the_installed_environment(tmp_path):
    env = {**six_set(tmp_path / "six"), "IAMAP_ENV_DIR": str(tmp_path / "env")}
    assert command("install", env=env).returncode == 0
    result = command("self-test", env=env)
    assert result.returncode == 0 and f"Self-test passed: imports: six {SIX_VERSION}" in result.stdout



def test_installer_modules_import_in_a_bare_python_without_site_packages():
    # QGIS's Python and the set-up scripts import them: -I -S, no site-packages at all
    script = ("import sys; sys.path.insert(0, sys.argv[1])\n"
              "import engine.host.install, engine.host.torch_build, engine.host.self_test\n"
              "print(sorted(m for m in sys.modules if m.split('.')[0] not in sys.stdlib_module_names "
              "and m.split('.')[0] not in ('engine', '__main__')))\n")
    result = subprocess.run(["/usr/bin/python3", "-I", "-S", "-c", script, str(PLUGIN_DIR)], capture_output=True,
                            text=True)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stderr
