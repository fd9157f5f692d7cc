"""An input that opens but cannot be read to the end: a message naming the input, never an internal error."""

from __future__ import annotations

import subprocess

import pytest

from engine.errors import ParameterError
from engine.events import Reporter
from engine.rasters import open_raster
from engine.worker import run_tool

from ..fixtures import random_raster, regions_raster


def test_a_vrt_whose_source_is_gone_is_refused_before_any_work(tmp_path):
    source = random_raster(tmp_path / "src.tif", 64, 64)
    vrt = tmp_path / "in.vrt"
    subprocess.run(["gdalbuildvrt", str(vrt), str(source)], check=True, capture_output=True)
    source.unlink()
    with pytest.raises(ParameterError) as info, open_raster(str(vrt)):
        pass
    assert info.value.parameter == "INPUT"
    assert f"refers to 1 file(s) that do not exist: {source}" in str(info.value)


def test_a_truncated_input_read_during_the_run_names_input_and_leaves_no_output(tmp_path):
    raster, _ = regions_raster(tmp_path / "f.tif", 512, 512, bands=8)
    data = raster.read_bytes()
    raster.write_bytes(data[: len(data) * 2 // 3])  # the header and first blocks survive: it opens
    reporter = Reporter()
    status = run_tool("cluster", {"INPUT": str(raster), "OUTPUT": str(tmp_path / "c.tif")}, reporter)
    error = next(e for e in reporter.events if e["type"] == "error")
    assert status == 1 and error["parameter"] == "INPUT" and "Internal error" not in error["message"]
    assert f"{raster} opens but could not be read" in error["message"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.tif"]
