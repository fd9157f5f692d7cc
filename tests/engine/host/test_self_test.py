"""The environment self-test, run here in the worker environment the tests run in (torch, timm, rasterio)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from engine.host.status import PLUGIN_DIR, REQUIREMENTS, worker_process_environment
from engine.host.self_test import import_name, requirement_names, run_checks


def test_requirement_names_drop_versions_markers_references_and_options(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# comment\ntorch>=2 ; python_version > '3.9'\nscikit-learn\n\n-c constraints.txt\n"
                            "slowpkg @ file:///tmp/slow pkg\nhuggingface_hub  # hub\n")
    assert requirement_names(requirements) == ["torch", "scikit-learn", "slowpkg", "huggingface_hub"]
    assert [import_name(n) for n in ("scikit-learn", "umap-learn", "huggingface_hub", "Pillow")] == [
        "sklearn", "umap", "huggingface_hub", "PIL"]


def test_every_check_passes_in_the_worker_environment():
    checks = {check: (ok, detail) for check, ok, detail in run_checks(requirement_names(REQUIREMENTS), "cpu")}
    assert all(ok for ok, _ in checks.values()), checks
    assert "torch 2." in checks["imports"][1] and "sklearn" not in checks["imports"][1]  # distribution names
    assert "on cpu" in checks["forward pass"][1] and "output (2, 384)" in checks["forward pass"][1]
    assert checks["GDAL/PROJ"][1].startswith("GDAL 3.") and "UTM 31N -> WGS 84 exact" in checks["GDAL/PROJ"][1]


def test_missing_package_fails_imports_and_checks_without_their_package_are_skipped():
    results = list(run_checks(["six", "no-such-package-here"], "cpu"))
    assert results[0][0] == "imports" and not results[0][1]
    assert "no-such-package-here: ModuleNotFoundError" in results[0][2]
    assert results[1:] == [("forward pass", True, "skipped: torch is not in the requirement set"),
                           ("GDAL/PROJ", True, "skipped: rasterio is not in the requirement set")]


def test_cuda_asked_without_a_gpu_fails_with_the_remedy():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the forward pass runs on it")
    results = dict((check, (ok, detail)) for check, ok, detail in run_checks(["torch"], "cuda"))
    ok, detail = results["forward pass"]
    assert not ok and "sees no usable GPU" in detail and "install the CPU build" in detail


def test_command_prints_one_json_line_per_check_and_fails_on_a_failed_check(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("six\nno-such-package-here\n")
    result = subprocess.run([sys.executable, "-m", "engine.host.self_test", "--requirements", str(requirements)],
                            cwd=str(PLUGIN_DIR), env=worker_process_environment(), capture_output=True, text=True)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.returncode == 1
    assert [line["check"] for line in lines] == ["imports", "forward pass", "GDAL/PROJ"]
    assert [line["ok"] for line in lines] == [False, True, True]
