"""Finding and checking the worker environment (no install is run here: the test command does that)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from engine.host import status as environment
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
    with pytest.raises(EnvironmentProblem, match="not installed.*python3 -m engine.host.environment install"):
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


def test_requirement_files_can_be_replaced_and_change_the_fingerprint(monkeypatch, tmp_path):
    assert environment.requirement_files() == (environment.REQUIREMENTS, environment.CONSTRAINTS)
    before = environment.fingerprint()
    (tmp_path / "r.txt").write_text("six\n")
    (tmp_path / "c.txt").write_text("six==1.16.0\n")
    monkeypatch.setenv("IAMAP_REQUIREMENTS", str(tmp_path / "r.txt"))
    monkeypatch.setenv("IAMAP_CONSTRAINTS", str(tmp_path / "c.txt"))
    assert environment.requirement_files() == (tmp_path / "r.txt", tmp_path / "c.txt")
    assert environment.fingerprint() != before


def test_the_fingerprint_follows_the_requirements_not_their_comments(monkeypatch, tmp_path):
    (tmp_path / "r.txt").write_text("# what the worker needs\nsix\n")
    (tmp_path / "c.txt").write_text("six==1.16.0\n")
    monkeypatch.setenv("IAMAP_REQUIREMENTS", str(tmp_path / "r.txt"))
    monkeypatch.setenv("IAMAP_CONSTRAINTS", str(tmp_path / "c.txt"))
    before = environment.fingerprint()
    (tmp_path / "r.txt").write_text("# what the worker needs, see the README\n\nsix  # the one package\n")
    assert environment.fingerprint() == before
    (tmp_path / "c.txt").write_text("six==1.17.0\n")
    assert environment.fingerprint() != before


def test_base_python_inside_an_embedding_program_is_the_interpreter_of_its_own_installation(monkeypatch, tmp_path):
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    prefix = tmp_path / "Python framework"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "bin" / f"python{version}").write_text("")
    monkeypatch.delenv("IAMAP_BASE_PYTHON", raising=False)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "QGIS.app" / "Contents" / "MacOS" / "QGIS"))
    monkeypatch.setattr(sys, "base_prefix", str(prefix))
    assert environment.base_python() == str(prefix / "bin" / f"python{version}")
    (prefix / "bin" / f"python{version}").unlink()  # Windows (OSGeo4W apps/Python3x): python.exe at the top
    (prefix / "python.exe").write_text("")
    assert environment.base_python() == str(prefix / "python.exe")


def test_base_python_variable_wins_and_a_wrong_one_is_reported(monkeypatch, tmp_path):
    monkeypatch.setenv("IAMAP_BASE_PYTHON", sys.executable)
    assert environment.base_python() == sys.executable
    monkeypatch.setenv("IAMAP_BASE_PYTHON", str(tmp_path / "python"))
    with pytest.raises(EnvironmentProblem, match="IAMAP_BASE_PYTHON points to .* which does not exist"):
        environment.base_python()


def test_install_hint_quotes_a_plugin_folder_with_spaces_for_the_shell_in_use(monkeypatch, tmp_path):
    folder = tmp_path / "QGIS plugins" / "iamap"
    monkeypatch.setattr(environment, "PLUGIN_DIR", folder)
    hint = environment.install_command_hint()
    assert f"cd '{folder}' && python3 -m engine.host.environment install" in hint
    assert "Plugins > IAMAP > Install / repair environment" in hint and "--torch-build" in hint
    monkeypatch.setattr(sys, "platform", "win32")
    assert f'cd /d "{folder}" && python -m engine.host.environment install' in environment.install_command_hint()


def test_worker_processes_get_none_of_qgis_python_gdal_or_proj_variables(monkeypatch):
    monkeypatch.setenv("PYTHONHOME", "/qgis/python")
    monkeypatch.setenv("PROJ_LIB", "/qgis/proj")
    monkeypatch.setenv("GDAL_DATA", "/qgis/gdal")
    env = environment.worker_process_environment()
    assert not {"PYTHONHOME", "PROJ_LIB", "GDAL_DATA"} & set(env)
    assert env["PYTHONPATH"] == str(environment.PLUGIN_DIR) and env["PYTHONIOENCODING"] == "utf-8"
