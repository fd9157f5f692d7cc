"""The README's main-job command, ``bash scripts/demo.sh OUT``: the whole chain on the bundled sample through
qgis_process, every output and both quick-look PNGs where it says, one line per step and no pip output; and the
environment install it starts: pip's output in a log with one line here, and the log's end shown on a failure."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import rasterio
from matplotlib.image import imread

from testsupport.requirement_sets import SIX_VERSION, requirement_set, six_set
from .conftest import REPO
from .test_ml import qml_colours, report_swatches

pytestmark = pytest.mark.qgis

PIP_LINE = re.compile(r"^\s*(Collecting|Downloading|Installing collected|Successfully installed|Requirement already"
                      r"|Processing /|Using cached|Attempting uninstall|Building wheel)", re.MULTILINE)
RASTERS = {"features.tif": 384, "features_pca.tif": 3, "clusters.tif": 1, "river_similarity.tif": 1,
           "landcover.tif": 1}
FILES = ("pca.iamapmodel", "river_points_used.gpkg", "landcover_report.html", "landcover_rf.iamapmodel",
         "diagnostics.json", "landcover.png", "river_similarity.png")


def bash(command: str, env: dict, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", command], cwd=str(REPO), capture_output=True, text=True, timeout=timeout,
                          env=env)


def assert_quick_look(path) -> None:
    image = imread(path)  # raises on a file that is not a PNG
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 600  # the scene and the map side by side
    colours = np.unique(image[..., :3].reshape(-1, 3).round(2), axis=0)
    assert len(colours) > 20  # a picture, not a blank canvas


def test_demo_runs_the_whole_chain_on_the_sample_quietly(qgis, tmp_path):
    out = tmp_path / "demo out"
    env = {**qgis.env, "IAMAP_PYTHON": sys.executable}  # the throw-away QGIS profile; this worker environment
    result = bash(f"bash scripts/demo.sh '{out}'", env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    stdout = result.stdout
    for name, bands in RASTERS.items():
        with rasterio.open(out / name) as src, rasterio.open(REPO / "docs" / "sample" / "sample_rgb.tif") as sample:
            assert src.count == bands and src.crs == sample.crs, name
            assert f"{out / name}  ({src.width}x{src.height} px" in stdout  # where it is, said
    for name in FILES:
        assert (out / name).stat().st_size > 0, name
        assert str(out / name) in stdout
    with rasterio.open(out / "landcover.tif") as src:
        assert set(np.unique(src.read(1))) <= {1, 2, 3, 4, src.nodata}  # bare, cropland, forest, water
    # the classes' meaning, not the alphabet: water blue, forest green, cropland orange, bare soil brown (in the map's
    # style and in the report; engine/class_colours.py's table)
    expected = {"water": "#1f78b4", "forest": "#1b7837", "cropland": "#f2a541", "bare": "#a0662f"}
    assert report_swatches((out / "landcover_report.html").read_text()) == expected
    assert qml_colours(out / "landcover.qml") == expected
    assert_quick_look(out / "landcover.png")
    assert_quick_look(out / "river_similarity.png")
    # quiet: a line per step, the rest in the logs
    steps = [line for line in stdout.splitlines() if line.startswith("== ") and " ... " in line]
    assert len(steps) == 7 and all(re.search(r" \.\.\. done in \d+ s$", line) for line in steps), stdout
    assert re.search(r"^   accuracy [0-9.]+, kappa [0-9.-]+ \(cross-validation", stdout, re.MULTILINE), stdout
    assert not PIP_LINE.search(stdout) and "Inputs" not in stdout and "0...10" not in stdout, stdout
    assert len(stdout.splitlines()) < 35, stdout
    assert "100 - done" in (out / "logs" / "encoder.log").read_text()  # qgis_process's output kept


def test_the_environment_install_is_one_line_with_pips_output_in_the_log(tmp_path):
    log = tmp_path / "install.log"
    env = {**{k: v for k, v in os.environ.items() if k != "IAMAP_PYTHON"}, **six_set(tmp_path / "six"),
           "IAMAP_ENV_DIR": str(tmp_path / "env"), "IAMAP_INSTALL_LOG": str(log)}
    result = bash("source scripts/common.sh && ensure_worker_env && echo \"WORKER=$WORKER_PYTHON\"", env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.fullmatch(r"== IAMAP worker environment \.\.\. done in \d+ s\nWORKER=\S+\n", result.stdout), \
        result.stdout
    assert result.stdout.split("WORKER=")[1].strip() == str(tmp_path / "env" / "bin" / "python")
    assert f"Successfully installed six-{SIX_VERSION}" in log.read_text()  # pip's output is in the log


def test_a_failed_install_shows_the_end_of_its_log_with_pips_error(tmp_path):
    log = tmp_path / "install.log"
    env = {**{k: v for k, v in os.environ.items() if k != "IAMAP_PYTHON"},
           **requirement_set(tmp_path / "missing", ["iamap-no-such-package-anywhere"]),
           "IAMAP_ENV_DIR": str(tmp_path / "env"), "IAMAP_INSTALL_LOG": str(log)}
    result = bash("source scripts/common.sh && ensure_worker_env && echo REACHED", env)
    assert result.returncode != 0 and "REACHED" not in result.stdout
    assert "== IAMAP worker environment ... FAILED (exit status 1)" in result.stdout
    assert f"The end of its log, {log}:" in result.stderr
    assert "iamap-no-such-package-anywhere" in result.stderr  # pip's error, visible without opening the log
    assert not (tmp_path / "env").exists()


def test_on_a_terminal_a_step_is_one_line_that_shows_its_progress(tmp_path):
    # the qgis_process bar (no line end until done) and the install's "[ 40 %]" lines, through a pseudo-terminal
    log = tmp_path / "step.log"
    (tmp_path / "step.sh").write_text(
        "printf 'Inputs\\n0...10...'; sleep 0.3; printf '20...30...'; sleep 0.3; printf '40...100 - done.\\n'\n"
        "printf '== Installing\\n[ 70 %%]\\n'\n")
    (tmp_path / "run.sh").write_text(f"source '{REPO}/scripts/common.sh'\n"
                                     f"quietly 'a step' '{log}' bash '{tmp_path / 'step.sh'}'\n")
    result = subprocess.run(["script", "-qec", f"bash '{tmp_path / 'run.sh'}'", "/dev/null"], cwd=str(REPO),
                            capture_output=True, timeout=60)  # bytes: text mode would turn the \r into line ends
    shown = result.stdout.decode().replace("\r\n", "\n")
    assert result.returncode == 0, shown
    updates = [part for part in shown.split("\r\x1b[K") if part]
    assert "== a step 10 %" in updates and "== a step 30 %" in updates
    assert "== a step: Installing 70 %" in updates
    assert re.fullmatch(r"== a step \.\.\. done in \d+ s\n", updates[-1]), shown
    assert "Inputs" not in shown and "0...10" not in shown
    assert log.read_text().startswith("Inputs\n0...10...20...30...40...100 - done.")
