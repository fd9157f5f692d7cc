"""Finding and checking the worker environment (no install is run here: the test command does that)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from engine import host_environment as environment
from engine.errors import EnvironmentProblem


def test_override_variable_wins(monkeypatch, tmp_path):
    monkeypatch.setenv("IAMAP_PYTHON", sys.executable)
    monkeypatch.setenv("IAMAP_ENV_DIR", str(tmp_path / "no-managed-env"))  # what it wins over: nothing installed
    status = environment.check_environment()
    assert status.complete and str(status.python) == sys.executable and status.source == "IAMAP_PYTHON"
    assert environment.worker_python() == Path(sys.executable)


def test_override_to_a_missing_file_is_reported(monkeypatch, tmp_path):
    monkeypatch.setenv("IAMAP_PYTHON", str(tmp_path / "python"))
    status = environment.check_environment()
    assert not status.complete and "does not exist" in status.problem


def test_missing_environment_gives_the_install_command(monkeypatch, tmp_path):
    monkeypatch.delenv("IAMAP_PYTHON", raising=False)
    monkeypatch.setenv("IAMAP_ENV_DIR", str(tmp_path / "env"))
    with pytest.raises(EnvironmentProblem, match="not installed.*python3 -m engine.host_environment install"):
        environment.worker_python()


def test_environment_without_marker_or_from_another_version_is_incomplete(monkeypatch, tmp_path):
    monkeypatch.delenv("IAMAP_PYTHON", raising=False)
    monkeypatch.setenv("IAMAP_ENV_DIR", str(tmp_path))
    python = environment.env_python(tmp_path)
    python.parent.mkdir(parents=True)
    python.write_text("")
    assert "incomplete" in environment.check_environment().problem
    (tmp_path / environment.MARKER_NAME).write_text(json.dumps({"fingerprint": "0000"}))
    assert "another version" in environment.check_environment().problem
    (tmp_path / environment.MARKER_NAME).write_text(json.dumps({"fingerprint": environment.fingerprint()}))
    assert environment.check_environment().complete


def test_constraints_pin_every_requirement():
    pinned = {line.split("==")[0].lower().replace("_", "-") for line in environment.CONSTRAINTS.read_text().splitlines()
              if "==" in line}
    wanted = [line.strip().lower().replace("_", "-") for line in environment.REQUIREMENTS.read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    assert wanted and not [name for name in wanted if name not in pinned]
