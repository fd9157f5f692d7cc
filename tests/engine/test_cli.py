"""The ``iamap`` command: the engine installed on its own (a wheel of the engine only) runs a tool with the
Processing parameter ids, shows progress and messages on the terminal, and fails with the tools' messages."""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio

from engine.cli import COMMAND_TOOLS, main
from engine.contract import TOOLS

from testsupport.dask_cluster import install_engine
from ..fixtures import regions_raster


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The plugin folder built as a wheel and installed (without dependencies: they are this Python's) into a
    folder of its own; returns that folder."""
    root = tmp_path_factory.mktemp("installed")
    site = install_engine(root)
    wheel = next((root / "wheel").glob("iamap_engine-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "iamap/engine/cli.py" in names and "iamap/engine/ml.py" in names
    assert not [n for n in names if n.startswith("iamap/") and not n.startswith("iamap/engine/")]  # no QGIS side
    return site


def run_command(installed: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(installed)}
    return subprocess.run([str(installed / "bin" / "iamap"), *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300)


def test_the_installed_command_clusters_a_raster_outside_the_plugin_folder(installed, tmp_path):
    raster, _ = regions_raster(tmp_path / "r.tif", 60, 40, regions=3)
    result = run_command(installed, "cluster", "--INPUT", str(raster), "--N_CLUSTERS", "3", "--BANDS", "1", "2",
                         "3", "--OUTPUT", str(tmp_path / "c.tif"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    outputs = json.loads(result.stdout)
    assert outputs["OUTPUT"] == str(tmp_path / "c.tif") and outputs["CLUSTERS"] == 3
    assert "100 %" in result.stderr and "3 cluster(s); pixels per cluster" in result.stderr
    with rasterio.open(tmp_path / "c.tif") as src:
        assert src.shape == (40, 60)


def test_a_bad_parameter_fails_with_the_tools_message(installed, tmp_path):
    raster, _ = regions_raster(tmp_path / "r.tif", 20, 20)
    result = run_command(installed, "cluster", "--INPUT", str(raster), "--N_CLUSTERS", "zero", "--OUTPUT",
                         str(tmp_path / "c.tif"), cwd=tmp_path)
    assert result.returncode == 1 and result.stdout == ""
    assert "error: N_CLUSTERS: 'zero' is not a valid whole number." in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "c.tif").exists()


def test_every_tool_and_every_parameter_is_offered(capsys):
    assert set(COMMAND_TOOLS) == set(TOOLS)
    for tool in TOOLS:
        with pytest.raises(SystemExit) as exit_status:
            main([tool, "--help"])
        assert exit_status.value.code == 0
        shown = capsys.readouterr().out
        assert all(f"--{name}" in shown for name in TOOLS[tool].names), tool

def test_missing_parameters_are_named_by_the_tool(capsys):
    assert main(["cluster"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: ") and ("INPUT" in error or "OUTPUT" in error) and "Traceback" not in error


def test_several_rasters_run_in_turn_each_with_its_own_outputs(tmp_path, capsys):
    first, _ = regions_raster(tmp_path / "north.tif", 40, 30, regions=3, seed=1)
    second, _ = regions_raster(tmp_path / "south.tif", 50, 20, regions=3, seed=2)
    missing = tmp_path / "west.tif"  # fails; the others still run
    status = main(["cluster", "--INPUT", str(first), str(missing), str(second), "--N_CLUSTERS", "3",
                   "--OUTPUT", str(tmp_path / "out" / "{name}_clusters.tif")])
    captured = capsys.readouterr()
    assert status == 1 and "1 of 3 rasters failed" in captured.err
    results = json.loads(captured.out)
    assert [r["INPUT"] for r in results] == [str(first), str(missing), str(second)]
    assert "west.tif" in results[1]["error"] and "outputs" not in results[1]
    for result, shape in ((results[0], (30, 40)), (results[2], (20, 50))):
        with rasterio.open(result["outputs"]["OUTPUT"]) as src:
            assert src.shape == shape
    assert sorted(p.name for p in (tmp_path / "out").glob("*.tif")) == ["north_clusters.tif", "south_clusters.tif"]


@pytest.mark.parametrize("outputs, message", [
    (["--OUTPUT", "same.tif"], "OUTPUT must contain {name}"),
    (["--OUTPUT", "{name}.tif", "--SAVE_MODEL", "model.iamapmodel"], "SAVE_MODEL must contain {name}"),
])
def test_several_rasters_need_outputs_named_after_each(tmp_path, capsys, outputs, message):
    with pytest.raises(SystemExit) as exit_status:
        main(["reduction", "--INPUT", "a.tif", "b.tif", *outputs])
    assert exit_status.value.code == 2 and message in capsys.readouterr().err


def test_two_rasters_of_the_same_name_are_refused(capsys):
    with pytest.raises(SystemExit) as exit_status:
        main(["reduction", "--INPUT", "x/a.tif", "y/a.tif", "--OUTPUT", "{name}.tif"])
    assert exit_status.value.code == 2 and "share the name 'a'" in capsys.readouterr().err


def test_an_output_named_like_another_input_is_refused_before_anything_runs(tmp_path, capsys):
    first, _ = regions_raster(tmp_path / "a.tif", 20, 20)
    second, _ = regions_raster(tmp_path / "a_f.tif", 20, 20, seed=1)
    before = second.read_bytes()
    with pytest.raises(SystemExit) as exit_status:
        main(["cluster", "--INPUT", str(first), str(second), "--OUTPUT", str(tmp_path / "{name}_f.tif")])
    assert exit_status.value.code == 2
    assert "OUTPUT of a.tif would be a_f.tif, another INPUT raster" in capsys.readouterr().err
    assert second.read_bytes() == before and not (tmp_path / "a_f_f.tif").exists()


def test_1_0_2_names_are_read_like_on_the_qgis_side_and_refusals_exit_1(tmp_path, capsys):
    path, _ = regions_raster(tmp_path / "scene.tif", 64, 64, bands=4)
    folder = tmp_path / "out"
    folder.mkdir()
    assert main(["cluster", "--INPUT", str(path), "--MAIN_PARAM", "2", "--SUBSET", "500", "--METHOD", "7",
                 "--OUTPUT", str(folder)]) == 0
    err = capsys.readouterr().err
    assert err.count("MAIN_PARAM='2' is IAMAP 1.0.2's parameter: read as N_CLUSTERS='2'") == 1
    assert "METHOD='7' read in IAMAP 1.0.2's order as 'KMeans'" in err
    with rasterio.open(folder / "cluster.tif") as out:
        assert set(np.unique(out.read(1))) == {0, 1}
    assert (folder / "kmeans.iamapmodel").is_file()
    assert main(["cluster", "--INPUT", str(path), "--LOAD", str(folder / "nothing.pkl"), "--CRS", "EPSG:4326",
                 "--OUTPUT", str(tmp_path / "c.tif")]) == 1
    assert "error: CRS: IAMAP 1.0.2's CRS='EPSG:4326' has no equivalent here" in capsys.readouterr().err
