"""Hostile inputs through the real QGIS (issue 24, part B): rasters one pixel thin, an output of nodata only, a
VRT whose source is gone, enums by number or name, outputs of one run sharing a stem, RESUME after a change,
numbers out of range, long band lists, and file parameters given a folder, a FIFO, a device or an unreadable
file. Every refusal is a message naming the parameter (id and dialog label), never a traceback, a hang or a
success without a valid value."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import rasterio

from ..fixtures import Interrupt, interrupt_after, random_raster, regions_raster, write_raster
from .conftest import QGIS_PROCESS, REPO
from .test_data_safety import failure, sha256, template  # noqa: F401 (a fixture)
from .test_encoder import TINY

pytestmark = pytest.mark.qgis


def written(folder, input_name: str) -> list[str]:
    """The files in ``folder`` besides the input (and the statistics QGIS keeps of it in ``<input>.aux.xml``)."""
    return sorted(p.name for p in folder.iterdir() if p.name not in (input_name, f"{input_name}.aux.xml"))


@pytest.fixture
def two_classes(tmp_path):
    import geopandas as gpd

    from ..fixtures import UTM_ORIGIN

    x0, y0 = UTM_ORIGIN
    path = tmp_path / "two.gpkg"
    gpd.GeoDataFrame({"label": ["a", "b", "a", "b"]}, crs="EPSG:32633",
                     geometry=gpd.points_from_xy([x0 + 55, x0 + 405, x0 + 105, x0 + 355],
                                                 [y0 - 55, y0 - 405, y0 - 405, y0 - 55])).to_file(path)
    return path


@pytest.mark.parametrize("width, height", [(256, 1), (1, 256), (65535, 1)])
def test_a_raster_one_pixel_thin_is_refused_naming_input_and_the_minimum(qgis, tmp_path, width, height):
    raster = random_raster(tmp_path / "thin.tif", width, height)
    text = failure(qgis, "iamap:encoder", {**TINY, "INPUT": raster, "OUTPUT": tmp_path / "f.tif"})
    assert f"INPUT: the raster is {width}x{height} px, too small to encode with SIZE=224" in text
    assert "at least 8 px wide and 8 px high" in text and "or use a SIZE of 28 or less" in text
    assert "In the dialog: \u201cInput raster\u201d" in text and "Wrote" not in text
    assert written(tmp_path, "thin.tif") == []


def test_an_output_of_nodata_only_is_a_failure_not_a_success(qgis, tmp_path):
    raster = write_raster(tmp_path / "empty.tif", np.zeros((3, 64, 64), "uint8"), nodata=0)
    text = failure(qgis, "iamap:encoder", {**TINY, "INPUT": raster, "OUTPUT": tmp_path / "f.tif"})
    assert "OUTPUT: the result (4x4 px) has no valid value: every pixel is nodata, so it was not written" in text
    assert written(tmp_path, "empty.tif") == []


def test_a_vrt_whose_source_is_gone_names_input_and_the_missing_file(qgis, tmp_path):
    source = random_raster(tmp_path / "src.tif", 64, 64)
    vrt = tmp_path / "in.vrt"
    subprocess.run(["gdalbuildvrt", str(vrt), str(source)], check=True, capture_output=True)
    source.unlink()
    text = failure(qgis, "iamap:encoder", {**TINY, "INPUT": vrt, "OUTPUT": tmp_path / "f.tif"})
    assert f"INPUT: {vrt} refers to 1 file(s) that do not exist: {source}" in text and "Internal error" not in text


def test_every_enum_of_every_tool_is_taken_by_number_and_by_name(qgis):
    script = """
        import json
        from qgis.core import QgsApplication, QgsProcessingContext
        from iamap.engine.contract import TOOLS, Kind
        refused, checked = [], 0
        for tool in TOOLS.values():
            algorithm = QgsApplication.processingRegistry().algorithmById(f"iamap:{tool.name}")
            for spec in tool.parameters:
                if spec.kind is not Kind.ENUM:
                    continue
                for index, choice in enumerate(spec.choices):
                    for given in (index, str(index), choice):
                        params = {"INPUT": "/nonexistent.tif", spec.name: given}
                        translated = algorithm.translated(params, QgsProcessingContext()).params[spec.name]
                        ok, message = algorithm.checkParameterValues(params, QgsProcessingContext())
                        if translated != choice or spec.name in message:
                            refused.append([tool.name, spec.name, given, translated, message])
                        checked += 1
        print("REFUSED", json.dumps(refused), "CHECKED", checked)
    """
    result = qgis.pyqgis(script)
    assert "REFUSED []" in result.stdout, result.stdout[-3000:] + result.stderr[-3000:]
    assert int(result.stdout.split("CHECKED ")[1].split()[0]) > 100


@pytest.mark.parametrize("algorithm, method, name", [("iamap:reduction", "0", "PCA"),
                                                     ("iamap:cluster", "0", "KMeans")])
def test_a_method_number_runs_the_method_help_shows_under_it(qgis, tmp_path, algorithm, method, name):
    raster, _ = regions_raster(tmp_path / "f.tif", 48, 48, bands=8)
    help_text = qgis.process("help", algorithm).stdout
    assert f"- {method}: {name}" in help_text
    qgis.run(algorithm, {"INPUT": raster, "METHOD": method, "OUTPUT": tmp_path / "o.tif"})
    assert json.loads((tmp_path / "o.iamap.json").read_text())["parameters"]["METHOD"] == name
    with rasterio.open(tmp_path / "o.tif") as out:
        assert out.read_masks(1).any()


def test_outputs_of_one_run_sharing_a_stem_are_written(qgis, tmp_path, two_classes):
    raster, _ = regions_raster(tmp_path / "f.tif", 48, 48, bands=8)
    qgis.run("iamap:reduction", {"INPUT": raster, "OUTPUT": tmp_path / "umap.tif",
                                 "SAVE_MODEL": tmp_path / "umap.iamapmodel"})  # the README's example
    assert (tmp_path / "umap.tif").exists() and (tmp_path / "umap.iamapmodel").exists()
    qgis.run("iamap:ml", {"INPUT": raster, "TEMPLATE": two_classes, "GT_COL": "label", "CV": "none",
                          "OUTPUT": tmp_path / "c.tif",
                          "REPORT": tmp_path / "mlk.html", "SAVE_MODEL": tmp_path / "mlk.iamapmodel"})
    assert (tmp_path / "mlk.html").exists() and (tmp_path / "mlk.iamapmodel").exists()
    assert not list(tmp_path.glob("*.partial*")) and not list(tmp_path.glob("*.tmp"))


def test_resume_after_changing_size_says_why_the_partial_is_not_used(qgis, tmp_path, monkeypatch):
    from engine.encoder import run_encoder
    from engine.events import Reporter

    raster = random_raster(tmp_path / "in.tif", 300, 900, seed=3)  # 57 output rows, durable every 16
    out = tmp_path / "f.tif"

    interrupt_after(monkeypatch, 32)
    with pytest.raises(Interrupt):
        run_encoder({**TINY, "PRETRAINED": False, "INPUT": str(raster), "OUTPUT": str(out)}, Reporter())
    assert json.loads((tmp_path / "f.partial.json").read_text())["rows_done"] == 32
    result = qgis.process("run", "iamap:encoder", f"--INPUT={raster}", f"--OUTPUT={out}", "--SIZE=112",
                          "--RESUME=true", *[f"--{k}={v}" for k, v in TINY.items()])
    text = result.stdout + result.stderr
    assert result.returncode == 0, text[-3000:]
    assert ("The interrupted run's f.partial.tif cannot be continued: it was written with SIZE 224 -> 112, "
            "STRIDE 224 -> 112. Starting over.") in text


@pytest.mark.parametrize("value, words", [
    ("SIZE=7", "SIZE: must be at least 8 (got 7). (In the dialog: \u201cTile size (pixels)\u201d.)"),
    ("STRIDE=0", "STRIDE: must be at least 1 (got 0)."), ("STRIDE=-5", "STRIDE: must be at least 1 (got -5)."),
    ("BATCH_SIZE=2.5", "BATCH_SIZE: '2.5' is not a valid whole number."),
    ("BATCH_SIZE=99999999999", "BATCH_SIZE: must be at most 2147483647 (got 99999999999)."),
    ("TARGET_RESOLUTION=nan", "TARGET_RESOLUTION: 'nan' is not a finite number."),
    ("RESUME=maybe", "RESUME: 'maybe' is not a valid true/false value."),
])
def test_a_number_or_boolean_out_of_range_is_explained_with_its_range_and_label(qgis, tmp_path, value, words):
    raster = random_raster(tmp_path / "in.tif", 64, 64)
    result = qgis.process("run", "iamap:encoder", f"--INPUT={raster}", f"--OUTPUT={tmp_path / 'f.tif'}",
                          f"--{value}", *[f"--{k}={v}" for k, v in TINY.items()])
    text = result.stdout + result.stderr
    assert result.returncode != 0 and words in text and "Incorrect parameter value" not in text
    assert "In the dialog:" in text and not (tmp_path / "f.tif").exists()


def test_the_help_gives_every_bounded_number_its_range(qgis):
    text = qgis.process("help", "iamap:encoder").stdout
    assert "Allowed: 8 or more. Default: 224." in text and "Allowed: 1 or more. Default: 8." in text


def test_every_numeric_parameter_given_huge_tiny_or_broken_values_gets_a_message_naming_it(qgis, tmp_path,
                                                                                          template):  # noqa: F811
    """QGIS's check agrees with the engine's rules (engine.parameters.convert) on every value, and a refusal
    names the parameter and its dialog label."""
    raster, _ = regions_raster(tmp_path / "f.tif", 48, 48, bands=3)
    script = f"""
        import json
        from qgis.core import QgsApplication, QgsProcessingContext
        from iamap.engine.contract import TOOLS, Kind
        from iamap.engine.errors import ParameterError
        from iamap.engine.parameters import convert
        bad, checked = [], []
        for tool in TOOLS.values():
            algorithm = QgsApplication.processingRegistry().algorithmById(f"iamap:{{tool.name}}")
            base = {{"INPUT": {str(raster)!r}, "TEMPLATE": {str(template)!r}, "GT_COL": "label",
                    "OUTPUT": {str(tmp_path / "o.tif")!r}, "LATER": [{str(raster)!r}]}}
            for spec in tool.parameters:
                if spec.kind not in (Kind.INT, Kind.FLOAT):
                    continue
                for given in ("1e12", "-1e12", "nan", "inf", "x", "2.5", "0"):
                    try:
                        convert(spec, given)
                        accepted = True
                    except ParameterError:
                        accepted = False
                    ok, message = algorithm.checkParameterValues({{**base, spec.name: given}}, QgsProcessingContext())
                    named = message.startswith(spec.name + ":") and spec.label in message
                    if ok != accepted or not (ok or named):
                        bad.append([tool.name, spec.name, given, ok, message])
                    checked.append(ok)
        print("BAD", json.dumps(bad), "CHECKED", len(checked), "REFUSED", checked.count(False))
    """
    result = qgis.pyqgis(script)
    assert "BAD []" in result.stdout, result.stdout[-4000:] + result.stderr[-3000:]
    counts = result.stdout.split("CHECKED ")[1].split()
    assert int(counts[0]) >= 100 and int(counts[2]) >= 50  # every number, most of these values refused


def test_an_error_is_reported_once_by_iamap_the_other_copies_are_qgis_process_echoing_its_log(qgis, tmp_path):
    raster = random_raster(tmp_path / "in.tif", 64, 64)
    missing = tmp_path / "missing.pth"
    result = qgis.process("run", "iamap:encoder", f"--INPUT={raster}", f"--OUTPUT={tmp_path / 'f.tif'}",
                          f"--CKPT={missing}", *[f"--{k}={v}" for k, v in TINY.items()])
    message = f"CKPT: checkpoint file {missing} does not exist. (In the dialog: \u201cLocal checkpoint\u201d.)"
    lines = result.stderr.splitlines()
    assert result.returncode != 0 and lines.count(f"ERROR:\t{message}") == 1
    # QGIS's runner logs the error as critical when the algorithm fails and again when the feedback reports it;
    # qgis_process prints every critical log entry: two echoes, none from IAMAP
    assert lines.count(message) <= 2 and message not in result.stdout


def test_a_band_mismatch_gives_the_count_and_a_range_not_every_number(qgis, tmp_path):
    wide, _ = regions_raster(tmp_path / "wide.tif", 48, 48, bands=40)
    narrow, _ = regions_raster(tmp_path / "narrow.tif", 48, 48, bands=8)
    model = tmp_path / "m.iamapmodel"
    qgis.run("iamap:reduction", {"INPUT": wide, "OUTPUT": tmp_path / "a.tif", "SAVE_MODEL": model})
    text = failure(qgis, "iamap:reduction", {"INPUT": narrow, "LOAD_MODEL": model, "OUTPUT": tmp_path / "b.tif"})
    assert "fitted on 40 band(s) (bands 1-40 (40 in all) of wide.tif); the selected input has 8" in text
    assert "1, 2, 3" not in text


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("algorithm, parameter, extra", [
    ("iamap:encoder", "INPUT", TINY), ("iamap:encoder", "CKPT", TINY), ("iamap:similarity", "TEMPLATE", {}),
    ("iamap:ml", "TEMPLATE", {"GT_COL": "label"}), ("iamap:reduction", "LOAD_MODEL", {}),
])
@pytest.mark.parametrize("kind", ["fifo", "device", "folder"])
def test_a_file_parameter_given_a_fifo_a_device_or_a_folder_is_named_at_once(qgis, tmp_path, fifo, algorithm,
                                                                            parameter, extra, kind):
    raster, _ = regions_raster(tmp_path / "f.tif", 48, 48, bands=3)
    given = {"fifo": fifo, "device": "/dev/zero", "folder": tmp_path}[kind]
    params = {"INPUT": raster, **extra, parameter: given, "OUTPUT": tmp_path / "o.tif"}
    if parameter in ("INPUT", "TEMPLATE") and kind == "folder":  # a layer may be a folder (an Arc/Info grid)
        words = "QGIS can open"
    else:
        words = {"fifo": "is a named pipe (FIFO), not a file", "device": "is a device, not a file",
                 "folder": "is a folder; give a file inside it"}[kind]
    with pytest.raises(Exception) as info:  # a hang is a subprocess timeout, not a message
        qgis.run(algorithm, params, timeout=120)
    text = info.value.result.stdout + info.value.result.stderr
    assert f"{parameter}: " in text and words in text and "In the dialog:" in text and "Traceback" not in text
    assert not (tmp_path / "o.tif").exists()


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_later_date_given_a_fifo_or_a_device_is_named_at_once(qgis, tmp_path, fifo, kind):
    first, _ = regions_raster(tmp_path / "d1.tif", 48, 48, bands=3)
    second, _ = regions_raster(tmp_path / "d2.tif", 48, 48, bands=3)
    given, words = {"fifo": (fifo, "is a named pipe (FIFO), not a file"),
                    "device": ("/dev/zero", "is a device, not a file")}[kind]
    with pytest.raises(Exception) as info:  # a hang is a subprocess timeout, not a message
        qgis.run("iamap:change", {"INPUT": first, "LATER": [second, given], "OUTPUT": tmp_path / "c.tif"},
                 timeout=120)
    text = info.value.result.stdout + info.value.result.stderr
    assert f"LATER #2: {given} {words}" in text and "In the dialog:" in text and "Traceback" not in text
    assert not (tmp_path / "c.tif").exists()


@pytest.mark.parametrize("destination", ["/dev/null", "fifo"])
def test_a_destination_that_is_a_device_or_a_fifo_is_refused_and_left_as_it_is(qgis, tmp_path, fifo, destination):
    raster, _ = regions_raster(tmp_path / "f.tif", 48, 48, bands=3)
    target = fifo if destination == "fifo" else destination
    text = failure(qgis, "iamap:reduction", {"INPUT": raster, "OUTPUT": target})
    assert f"OUTPUT: {target} is " in text and "not a file: IAMAP writes files" in text
    assert (os.stat(target).st_mode & 0o170000) in (0o010000, 0o020000)  # still a FIFO / a character device


USER = "iamap-hostile"


@pytest.fixture
def other_user():
    """A user that is not root (root reads every file), created when missing; skipped where that is impossible."""
    if os.geteuid() != 0:
        pytest.skip("creating a user needs root")
    if subprocess.run(["id", USER], capture_output=True).returncode != 0:
        if not shutil.which("useradd") or subprocess.run(["useradd", "--system", "--no-create-home", USER],
                                                         capture_output=True).returncode != 0:
            pytest.skip("cannot create a user here")
    return USER


def test_an_input_this_user_cannot_read_is_named_with_the_fix(qgis, tmp_path_factory, other_user):
    import tempfile

    root = tempfile.mkdtemp(prefix="iamap-perm-")  # outside pytest's root-only folders
    try:
        os.chmod(root, 0o777)
        raster = random_raster(tmp_path_factory.mktemp("data") / "secret.tif", 64, 64)
        secret = shutil.copy(raster, os.path.join(root, "secret.tif"))
        os.chmod(secret, 0o600)
        home, plugins = os.path.join(root, "home"), os.path.join(root, "plugins")
        os.mkdir(home)
        os.mkdir(plugins)
        os.symlink(REPO, os.path.join(plugins, "iamap"))
        shutil.chown(home, other_user)
        env = {**qgis.env, "HOME": home, "XDG_RUNTIME_DIR": home, "QGIS_PLUGINPATH": plugins,
               "IAMAP_PYTHON": sys.executable}
        as_user = ["runuser", "-u", other_user, "--", "env", *[f"{k}={v}" for k, v in env.items()], QGIS_PROCESS]
        enabled = subprocess.run([*as_user, "plugins", "enable", "iamap"], capture_output=True, text=True, cwd=root)
        assert enabled.returncode == 0, enabled.stdout + enabled.stderr
        result = subprocess.run([*as_user, "run", "iamap:encoder", f"--INPUT={secret}",
                                 f"--OUTPUT={os.path.join(root, 'f.tif')}"], capture_output=True, text=True,
                                timeout=300, cwd=root)
        text = result.stdout + result.stderr
        assert result.returncode != 0
        assert f"INPUT: {secret} cannot be read by this user (permission denied)" in text, text[-3000:]
        assert "Traceback" not in text and not os.path.exists(os.path.join(root, "f.tif"))
    finally:
        shutil.rmtree(root, ignore_errors=True)
