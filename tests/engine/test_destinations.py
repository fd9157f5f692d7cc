"""Destinations: never an input, never twice in one run, writable, one writer at a time, disk space."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

from engine.destinations import (DestinationLock, check_destinations, disk_full_error, ensure_space, guarded_run,
                                 leftovers, lock_path, written_files)
from engine.contract import Kind
from engine.errors import ParameterError
from engine.events import Reporter
from engine.worker import run_tool

from ..conftest import REPO
from ..fixtures import random_raster, regions_raster


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("tool, params, parameter, text", [
    ("encoder", {"INPUT": "{d}/a.tif", "OUTPUT": "{d}/a.tif"}, "OUTPUT", "is the file given as INPUT"),
    ("encoder", {"INPUT": "{d}/a.partial.tif", "OUTPUT": "{d}/a.tif"}, "OUTPUT",
     "would write a.partial.tif, which is the file given as INPUT"),
    ("encoder", {"INPUT": "{d}/a.tif", "CKPT": "{d}/w.pth", "OUTPUT": "{d}/w.pth"}, "OUTPUT", "given as CKPT"),
    ("reduction", {"INPUT": "{d}/a.tif", "OUTPUT": "{d}/r.tif", "SAVE_MODEL": "{d}/a.tif"}, "SAVE_MODEL",
     "given as INPUT"),
    ("cluster", {"INPUT": "{d}/a.tif", "LOAD_MODEL": "{d}/m.iamapmodel", "OUTPUT": "{d}/c.tif",
                 "SAVE_MODEL": "{d}/m.iamapmodel"}, "SAVE_MODEL", "given as LOAD_MODEL"),
    ("similarity", {"INPUT": "{d}/a.tif", "TEMPLATE": "{d}/t.gpkg", "OUTPUT": "{d}/s.tif",
                    "OUTPUT_POINTS": "{d}/t.gpkg"}, "OUTPUT_POINTS", "given as TEMPLATE"),
    ("similarity", {"INPUT": "{d}/a.tif", "TEMPLATE": "{d}/t.gpkg", "OUTPUT": "{d}/s.tif",
                    "OUTPUT_POINTS": "{d}/s.tif"}, "OUTPUT_POINTS", "collides with OUTPUT"),
])
def test_a_destination_that_is_an_input_or_another_destination_is_refused(tmp_path, tool, params, parameter, text):
    params = {k: v.format(d=tmp_path) for k, v in params.items()}
    with pytest.raises(ParameterError) as info:
        check_destinations(tool, params)
    assert info.value.parameter == parameter and text in str(info.value) and "Choose another file name" in str(
        info.value)


def test_the_same_file_through_a_symlink_or_dot_dot_is_the_same_file(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "data", target_is_directory=True)
    params = {"INPUT": str(tmp_path / "data" / "a.tif"), "OUTPUT": str(tmp_path / "link" / ".." / "data" / "a.tif")}
    with pytest.raises(ParameterError, match="OUTPUT: .* is the file given as INPUT"):
        check_destinations("encoder", params)
    params["OUTPUT"] = str(tmp_path / "link" / "a.tif")
    with pytest.raises(ParameterError, match="OUTPUT: .* is the file given as INPUT"):
        check_destinations("encoder", params)


def test_unwritable_destinations_name_the_parameter(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "folder.tif").mkdir()
    cases = [(tmp_path / "file.txt" / "out.tif", "is a file, so"), (tmp_path / "folder.tif", "is a folder")]
    if os.geteuid() != 0:  # root writes anywhere
        readonly = tmp_path / "ro"
        readonly.mkdir(mode=0o500)
        cases.append((readonly / "out.tif", "cannot be written by this user"))
    for output, text in cases:
        with pytest.raises(ParameterError) as info:
            check_destinations("encoder", {"INPUT": str(tmp_path / "a.tif"), "OUTPUT": str(output)})
        assert info.value.parameter == "OUTPUT" and text in str(info.value)


def test_written_files_cover_partial_manifest_record_styles_and_lock(tmp_path):
    names = sorted(p.name for p in written_files(tmp_path / "out.tif"))
    assert names == sorted(["out.tif", "out.partial.tif", "out.partial.json", "out.iamap.json", "out.tif.aux.xml",
                            "out.partial.tif.aux.xml", "out.qml", "out.tif.tmp", ".out.tif.iamap-lock"])


def test_a_model_or_report_claims_only_its_file_its_tmp_and_its_lock(tmp_path):
    names = sorted(p.name for p in written_files(tmp_path / "umap.iamapmodel", Kind.FILE_DESTINATION))
    assert names == ["." + "umap.iamapmodel.iamap-lock", "umap.iamapmodel", "umap.iamapmodel.tmp"]


@pytest.mark.parametrize("tool, params", [
    ("reduction", {"OUTPUT": "umap.tif", "SAVE_MODEL": "umap.iamapmodel"}),  # the README's example
    ("ml", {"OUTPUT": "c.tif", "REPORT": "mlk.html", "SAVE_MODEL": "mlk.iamapmodel"}),
])
def test_outputs_of_one_run_sharing_a_stem_are_accepted(tmp_path, tool, params):
    check_destinations(tool, {"INPUT": str(tmp_path / "a.tif"), **{k: str(tmp_path / v) for k, v in params.items()}})


def test_two_rasters_sharing_a_stem_still_collide_on_their_manifest(tmp_path):
    with pytest.raises(ParameterError, match=r"c.partial.json would be written for both"):
        check_destinations("ml", {"INPUT": str(tmp_path / "a.tif"), "OUTPUT": str(tmp_path / "c.tif"),
                                  "OUTPUT_CONFIDENCE": str(tmp_path / "c.tiff")})


def test_a_second_writer_fails_at_once_and_a_killed_owner_leaves_no_stuck_lock(tmp_path):
    output = tmp_path / "out.tif"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from engine.destinations import DestinationLock\n"
        "lock = DestinationLock('OUTPUT', Path(sys.argv[1])); lock.acquire(); print('LOCKED', flush=True)\n"
        "time.sleep(60)"), str(output)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "LOCKED"
        started = time.monotonic()
        with pytest.raises(ParameterError) as info:
            DestinationLock("OUTPUT", output).acquire()
        assert time.monotonic() - started < 1
        assert info.value.parameter == "OUTPUT" and "another IAMAP run is writing" in str(info.value)
        assert f"pid {holder.pid}" in str(info.value)
    finally:
        holder.kill()
        holder.wait()
    assert lock_path(output).exists()  # left behind by the kill, but not locked any more
    lock = DestinationLock("OUTPUT", output)
    lock.acquire()
    lock.release()
    assert not lock_path(output).exists()


def test_space_is_refused_early_below_half_the_raw_size_and_warned_below_it(tmp_path, monkeypatch):
    free = shutil.disk_usage(tmp_path).free
    with pytest.raises(ParameterError, match="OUTPUT: not enough space on the disk holding"):
        ensure_space("OUTPUT", tmp_path / "out.tif", int(free * 2.5), Reporter())
    reporter = Reporter()
    ensure_space("OUTPUT", tmp_path / "sub" / "out.tif", int(free * 1.5), reporter)
    assert "it may not fit" in reporter.events[-1]["message"]


def test_a_full_disk_error_names_the_destination_written(tmp_path):
    params = {"INPUT": "a.tif", "TEMPLATE": "t.gpkg", "OUTPUT": str(tmp_path / "s.tif"),
              "OUTPUT_POINTS": str(tmp_path / "p.gpkg")}
    error = disk_full_error("similarity", params, OSError(28, "No space left on device", "p.gpkg"))
    assert error.parameter == "OUTPUT_POINTS" and "no space left on the disk holding" in str(error)
    assert disk_full_error("similarity", params, RuntimeError("TIFFWriteEncodedTile: No space left")).parameter \
        == "OUTPUT"
    assert disk_full_error("similarity", params, ValueError("something else")) is None


def test_leftovers_keep_the_encoders_resumable_partial_only(tmp_path):
    for name in ("e.partial.tif", "e.tif.tmp", "r.partial.tif", "r.partial.tif.aux.xml"):
        (tmp_path / name).write_text("x")
    assert [p.name for p in leftovers("encoder", {"OUTPUT": str(tmp_path / "e.tif")})] == ["e.tif.tmp"]
    assert sorted(p.name for p in leftovers("reduction", {"OUTPUT": str(tmp_path / "r.tif")})) == \
        ["r.partial.tif", "r.partial.tif.aux.xml"]


def test_a_failed_run_removes_what_nothing_resumes_and_releases_its_lock(tmp_path):
    output = tmp_path / "r.tif"
    with pytest.raises(RuntimeError):
        with guarded_run("reduction", {"INPUT": str(tmp_path / "in.tif"), "OUTPUT": str(output)}):
            assert lock_path(output).exists()
            (tmp_path / "r.partial.tif").write_text("half")
            raise RuntimeError("killed while writing")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_destination_folder_that_does_not_exist_is_created_and_the_log_says_so(tmp_path):
    raster, _ = regions_raster(tmp_path / "in.tif", 32, 32, bands=4)
    output, model = tmp_path / "new" / "deeper" / "pca.tif", tmp_path / "models" / "pca.iamapmodel"
    reporter = Reporter()
    assert run_tool("reduction", {"INPUT": str(raster), "OUTPUT": str(output), "N_COMPONENTS": 2,
                                  "SAVE_MODEL": str(model)}, reporter) == 0
    said = [e["message"] for e in reporter.events if e["type"] == "text" and "did not exist" in e["message"]]
    assert said == [f"OUTPUT: the folder {output.parent} did not exist; it was created.",
                    f"SAVE_MODEL: the folder {model.parent} did not exist; it was created."]
    assert output.exists() and model.exists()
    again = Reporter()  # the folders exist now: nothing to say
    assert run_tool("reduction", {"INPUT": str(raster), "OUTPUT": str(output), "N_COMPONENTS": 2}, again) == 0
    assert not any("did not exist" in e.get("message", "") for e in again.events)


@pytest.mark.parametrize("tool", ["encoder", "reduction", "cluster", "similarity"])
def test_output_equal_to_input_leaves_the_input_untouched_for_every_tool(tmp_path, tool):
    raster, _ = regions_raster(tmp_path / "in.tif", 32, 32, bands=3)
    before = sha256(raster)
    params = {"INPUT": str(raster), "OUTPUT": str(raster), "TEMPLATE": str(tmp_path / "t.gpkg"),
              "BACKBONE_NAME": "vit_tiny_patch16_224", "PRETRAINED": False}
    reporter = Reporter()
    assert run_tool(tool, params, reporter) == 1
    error = reporter.events[-1]
    assert error["type"] == "error" and error["parameter"] == "OUTPUT" and "never overwrites its input" in \
        error["message"]
    assert sha256(raster) == before and sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]


def test_two_runs_on_one_output_the_second_fails_at_once_and_the_first_completes(tmp_path):
    raster = random_raster(tmp_path / "in.tif", 224 * 3, 224 * 3)
    params = tmp_path / "params.json"
    out = tmp_path / "out.tif"
    params.write_text(json.dumps({"INPUT": str(raster), "OUTPUT": str(out), "BACKBONE_NAME": "vit_tiny_patch16_224",
                                  "PRETRAINED": False, "BATCH_SIZE": 1, "PRECISION": "fp32"}))
    first = subprocess.Popen([sys.executable, "-m", "engine.worker", "encoder", str(params)], cwd=REPO,
                             stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not lock_path(out).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        second = subprocess.run([sys.executable, "-m", "engine.worker", "encoder", str(params)], cwd=REPO,
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        error = json.loads(second.stdout.splitlines()[-1])
        assert error["parameter"] == "OUTPUT" and "another IAMAP run is writing" in error["message"]
        assert first.wait(timeout=300) == 0
    finally:
        first.kill()
    import rasterio

    with rasterio.open(out) as src:
        assert src.shape == (42, 42) and src.count == 192
    assert not lock_path(out).exists()


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs of a given size (CI runs as root); skipped only where mounting is not permitted."""
    mounted = []

    def make(size: str):
        folder = tmp_path / f"disk{len(mounted)}"
        folder.mkdir()
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip()}): needs root")
        mounted.append(folder)
        return folder

    yield make
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def run_on(tool: str, params: dict) -> dict:
    reporter = Reporter()
    assert run_tool(tool, params, reporter) == 1
    return reporter.events[-1]


def test_a_disk_too_small_for_the_encoder_output_is_refused_before_encoding(tmp_path, small_disk):
    raster = random_raster(tmp_path / "in.tif", 1120, 1120, seed=2)
    before, disk = sha256(raster), small_disk("1m")
    error = run_on("encoder", {"INPUT": str(raster), "OUTPUT": str(disk / "f.tif"),
                               "BACKBONE_NAME": "vit_tiny_patch16_224", "PRETRAINED": False})
    assert error["parameter"] == "OUTPUT" and "not enough space on the disk" in error["message"]
    assert not error["internal"] and list(disk.iterdir()) == [] and sha256(raster) == before


def test_the_disk_filling_up_while_encoding_is_a_clear_error_and_leaves_only_the_resumable_partial(tmp_path,
                                                                                                    small_disk):
    raster = random_raster(tmp_path / "in.tif", 1120, 1120, seed=2)  # 3.8 MB of features: passes the early check
    before, disk = sha256(raster), small_disk("2m")
    error = run_on("encoder", {"INPUT": str(raster), "OUTPUT": str(disk / "f.tif"),
                               "BACKBONE_NAME": "vit_tiny_patch16_224", "PRETRAINED": False, "PRECISION": "fp32"})
    assert error["parameter"] == "OUTPUT" and "no space left on the disk holding" in error["message"], error
    assert not error["internal"]
    assert sorted(p.name for p in disk.iterdir()) == ["f.partial.json", "f.partial.tif"]  # RESUME continues them
    assert sha256(raster) == before


def test_the_disk_filling_up_during_reduction_leaves_nothing(tmp_path, small_disk):
    raster, _ = regions_raster(tmp_path / "in.tif", 600, 600, bands=8, noise=1.0)
    before, disk = sha256(raster), small_disk("2400k")  # 4.3 MB raw output: passes the early check
    error = run_on("reduction", {"INPUT": str(raster), "OUTPUT": str(disk / "r.tif"), "SAVE_MODEL":
                                 str(disk / "m.iamapmodel"), "N_COMPONENTS": 3})
    assert error["parameter"] == "OUTPUT" and "no space left" in error["message"], error
    assert sorted(p.name for p in disk.iterdir()) == ["m.iamapmodel"]  # the model is complete and reusable
    assert sha256(raster) == before


def test_a_model_that_does_not_fit_on_the_disk_leaves_no_tmp_file(tmp_path, small_disk):
    raster, _ = regions_raster(tmp_path / "in.tif", 64, 64, bands=8)
    disk = small_disk("8k")
    error = run_on("reduction", {"INPUT": str(raster), "OUTPUT": str(tmp_path / "r.tif"),
                                 "SAVE_MODEL": str(disk / "m.iamapmodel"), "METHOD": "TSNE", "SAMPLE_SIZE": 3000})
    assert error["parameter"] == "SAVE_MODEL" and "space" in error["message"], error
    assert list(disk.iterdir()) == [] and not (tmp_path / "r.tif").exists()


@pytest.mark.parametrize("name, check", [
    ("used.gpkg", lambda p: p.read_bytes()[:15] == b"SQLite format 3"),
    ("used.shp", lambda p: p.read_bytes()[:4] == bytes.fromhex("0000270a") and p.with_suffix(".dbf").exists()),
    ("used.geojson", lambda p: json.loads(p.read_text())["type"] == "FeatureCollection"),
    ("used.csv", lambda p: p.read_text().splitlines()[0].split(",")[-3:] == ["x", "y", "wkt"]),
])
def test_output_points_are_written_in_the_format_their_extension_names(tmp_path, name, check):
    from ..fixtures import UTM_ORIGIN

    raster, _ = regions_raster(tmp_path / "f.tif", 40, 40)
    import geopandas as gpd

    x0, y0 = UTM_ORIGIN
    gpd.GeoDataFrame(geometry=gpd.points_from_xy([x0 + 55, x0 + 155], [y0 - 55, y0 - 55]), crs="EPSG:32633").to_file(
        tmp_path / "t.gpkg")
    reporter = Reporter()
    assert run_tool("similarity", {"INPUT": str(raster), "TEMPLATE": str(tmp_path / "t.gpkg"),
                                   "OUTPUT": str(tmp_path / "s.tif"), "OUTPUT_POINTS": str(tmp_path / name)},
                    reporter) == 0, reporter.events[-1]
    assert check(tmp_path / name)
    assert len(gpd.read_file(tmp_path / name)) == 2 if not name.endswith(".csv") else True
    assert not [p for p in tmp_path.iterdir() if "tmp" in p.name]


def test_an_output_points_extension_of_no_vector_format_is_refused_before_work(tmp_path):
    error = run_on("similarity", {"INPUT": str(tmp_path / "f.tif"), "TEMPLATE": str(tmp_path / "t.gpkg"),
                                  "OUTPUT": str(tmp_path / "s.tif"), "OUTPUT_POINTS": str(tmp_path / "p.txt")})
    assert error["parameter"] == "OUTPUT_POINTS" and ".gpkg, .shp, .geojson, .json, .csv" in error["message"]


@pytest.mark.parametrize("output_format", ["float32", "float16", "float16_zstd"])
def test_a_write_gdal_fails_only_when_closing_is_an_error_not_a_complete_output(tmp_path, output_format):
    """Half floats are converted in GDAL's block cache, and GDAL reports a failed write of a cached block only on
    stderr when the file closes: the rows are read back, so the run fails and no final file appears. A file
    size limit (SIGXFSZ ignored, as a full disk) makes every write fail from the first chunk on."""
    raster = random_raster(tmp_path / "in.tif", 300, 300, seed=2)
    script = textwrap.dedent(f"""
        import resource, signal, sys
        sys.path.insert(0, {str(REPO)!r})
        from engine import raster_writing
        from engine.worker import run_tool
        from engine.events import Reporter
        real = raster_writing.RowWriter._write
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        def full_disk(self, final):
            resource.setrlimit(resource.RLIMIT_FSIZE, (self.path.stat().st_size, resource.RLIM_INFINITY))
            try:
                return real(self, final)
            finally:
                resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        raster_writing.RowWriter._write = full_disk
        reporter = Reporter()
        status = run_tool("encoder", {{"INPUT": {str(raster)!r}, "OUTPUT": {str(tmp_path / "out.tif")!r},
                                       "BACKBONE_NAME": "vit_tiny_patch16_224", "PRETRAINED": False,
                                       "PRECISION": "fp32", "OUTPUT_FORMAT": {output_format!r}}}, reporter)
        print("STATUS", status)
        """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                            timeout=300)
    assert "STATUS 1" in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]
    assert not (tmp_path / "out.tif").exists() and not (tmp_path / "out.iamap.json").exists()
