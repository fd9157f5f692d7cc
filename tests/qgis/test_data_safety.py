"""Never lose a user's data, through the real QGIS: destinations that are inputs, two runs on one output, a full
disk, a changed output under RESUME, a worker Python without the packages, a cancelled run. Each test checks that
the inputs are byte-identical afterwards and that the message names the parameter (id and dialog label)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time

import pytest

from ..fixtures import UTM_ORIGIN, random_raster, regions_raster
from .conftest import QGIS_PROCESS, AlgorithmFailed
from .test_encoder import TINY

pytestmark = pytest.mark.qgis


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def failure(qgis, algorithm, params, env=None) -> str:
    with pytest.raises(AlgorithmFailed) as info:
        qgis.run(algorithm, params, env=env)
    text = info.value.result.stdout + info.value.result.stderr
    assert "Traceback" not in text
    return text


@pytest.fixture
def template(tmp_path):
    import geopandas as gpd

    x0, y0 = UTM_ORIGIN
    path = tmp_path / "refs.gpkg"
    gpd.GeoDataFrame({"label": ["a"]}, geometry=gpd.points_from_xy([x0 + 55], [y0 - 55]), crs="EPSG:32633").to_file(
        path)
    return path


@pytest.mark.parametrize("algorithm, extra", [
    ("iamap:encoder", TINY), ("iamap:reduction", {}), ("iamap:cluster", {}), ("iamap:similarity", {"TEMPLATE": None}),
    ("iamap:ml", {"TEMPLATE": None, "GT_COL": "label"}),
])
def test_output_equal_to_input_is_refused_for_every_tool(qgis, tmp_path, template, algorithm, extra):
    raster, _ = regions_raster(tmp_path / "scene.tif", 48, 48, bands=3)
    inputs = [raster, template]
    before = [sha256(p) for p in inputs]
    params = {**{k: (template if v is None else v) for k, v in extra.items()}, "INPUT": raster, "OUTPUT": raster}
    text = failure(qgis, algorithm, params)
    assert "OUTPUT: " in text and "is the file given as INPUT" in text and "IAMAP never overwrites its input" in text
    assert "In the dialog:" in text  # the dialog label is named too
    assert [sha256(p) for p in inputs] == before


def test_a_partial_file_as_input_of_its_own_output_is_refused(qgis, tmp_path):
    raster = random_raster(tmp_path / "x.partial.tif", 64, 64)
    before = sha256(raster)
    text = failure(qgis, "iamap:encoder", {**TINY, "INPUT": raster, "OUTPUT": tmp_path / "x.tif"})
    assert "OUTPUT: " in text and "would write x.partial.tif, which is the file given as INPUT" in text
    # (QGIS itself may keep statistics of the input layer in x.partial.tif.aux.xml)
    assert sha256(raster) == before and not (tmp_path / "x.tif").exists()


def test_points_or_a_report_over_the_template_a_model_over_the_input_are_refused(qgis, tmp_path, template):
    raster, _ = regions_raster(tmp_path / "scene.tif", 48, 48, bands=3)
    before = sha256(raster), sha256(template)
    text = failure(qgis, "iamap:similarity", {"INPUT": raster, "TEMPLATE": template, "OUTPUT": tmp_path / "s.tif",
                                              "OUTPUT_POINTS": template})
    assert "OUTPUT_POINTS: " in text and "given as TEMPLATE" in text
    text = failure(qgis, "iamap:reduction", {"INPUT": raster, "OUTPUT": tmp_path / "r.tif", "SAVE_MODEL": raster})
    assert "SAVE_MODEL" in text
    text = failure(qgis, "iamap:ml", {"INPUT": raster, "TEMPLATE": template, "GT_COL": "label",
                                      "OUTPUT": tmp_path / "c.tif", "OUTPUT_CONFIDENCE": tmp_path / "c.tif"})
    assert "OUTPUT_CONFIDENCE: " in text and "collides with OUTPUT" in text
    text = failure(qgis, "iamap:ml", {"INPUT": raster, "TEMPLATE": template, "GT_COL": "label",
                                      "OUTPUT": tmp_path / "c.tif", "REPORT": template})
    assert "REPORT: " in text and "given as TEMPLATE" in text
    assert (sha256(raster), sha256(template)) == before


def test_two_runs_on_one_output_the_second_fails_at_once(qgis, tmp_path):
    raster = random_raster(tmp_path / "in.tif", 224 * 4, 224 * 4)
    out = tmp_path / "out.tif"
    args = [QGIS_PROCESS, "run", "iamap:encoder", f"--INPUT={raster}", f"--OUTPUT={out}", "--BATCH_SIZE=1",
            *[f"--{k}={v}" for k, v in TINY.items()]]
    first = subprocess.Popen(args, env=qgis.env, cwd=str(qgis.home), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / ".out.tif.iamap-lock").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        started = time.monotonic()
        text = failure(qgis, "iamap:encoder", {**TINY, "INPUT": raster, "OUTPUT": out})
        assert "OUTPUT: another IAMAP run is writing" in text and "wait for it to finish" in text
        assert time.monotonic() - started < 30  # at once: QGIS's start-up, no encoding
        first_out, first_err = first.communicate(timeout=600)
        assert first.returncode == 0, first_out[-2000:] + first_err[-2000:]
    finally:
        first.kill()
    assert out.exists() and not (tmp_path / "out.partial.tif").exists()


def test_a_full_disk_is_a_clear_message_naming_output(qgis, tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here: needs root")
    try:
        raster = random_raster(tmp_path / "in.tif", 1120, 1120, seed=2)
        before = sha256(raster)
        text = failure(qgis, "iamap:encoder", {**TINY, "INPUT": raster, "OUTPUT": disk / "f.tif"})
        assert "OUTPUT: no space left on the disk holding" in text and "Internal error" not in text
        assert not (disk / "f.tif").exists() and sha256(raster) == before
    finally:
        subprocess.run(["umount", "-l", str(disk)])


def test_resume_does_not_trust_an_output_truncated_after_the_run(qgis, tmp_path):
    raster = random_raster(tmp_path / "in.tif", 224, 448)
    out = tmp_path / "f.tif"
    qgis.run("iamap:encoder", {**TINY, "INPUT": raster, "OUTPUT": out})
    complete = out.read_bytes()
    out.write_bytes(complete[: len(complete) // 2])
    result = qgis.process("run", "iamap:encoder", f"--INPUT={raster}", f"--OUTPUT={out}",
                          *[f"--{k}={v}" for k, v in TINY.items()])
    assert result.returncode == 0 and "encoding it again" in result.stdout + result.stderr
    assert len(out.read_bytes()) == len(complete)


def test_a_worker_python_without_the_packages_is_named_with_the_fix(qgis, tmp_path):
    raster = random_raster(tmp_path / "in.tif", 64, 64)
    env = {"IAMAP_PYTHON": "/usr/bin/python3"}
    text = failure(qgis, "iamap:encoder", {**TINY, "INPUT": raster, "OUTPUT": tmp_path / "f.tif"}, env=env)
    assert "IAMAP_PYTHON points to /usr/bin/python3, which lacks torch" in text
    qgis.run("iamap:diagnostics", {"OUTPUT": tmp_path / "r.json"}, env=env)
    ready = json.loads((tmp_path / "r.json").read_text())["qgis side"]["worker environment ready"]
    assert ready.startswith("no: IAMAP_PYTHON points to")


def test_cancelling_a_cluster_run_while_it_writes_leaves_no_partial_file(qgis, tmp_path):
    raster, _ = regions_raster(tmp_path / "f.tif", 1500, 1500, bands=8)
    out = tmp_path / "c.tif"
    script = f"""
        from qgis.core import QgsProcessingFeedback
        from iamap.utils.worker_runner import run_worker, WorkerCancelled
        import os, time
        feedback = QgsProcessingFeedback()
        seen = []
        def watch(percent):
            seen.append(percent)
            if percent > 50 and os.path.exists({str(tmp_path / 'c.partial.tif')!r}):
                feedback.cancel()
        feedback.progressChanged.connect(watch)
        try:
            run_worker("cluster", {{"INPUT": {str(raster)!r}, "OUTPUT": {str(out)!r}, "SAMPLE_SIZE": 2000}}, feedback)
            print("NOT CANCELLED")
        except WorkerCancelled:
            print("CANCELLED AT", max(seen))
        """
    result = qgis.pyqgis(script)
    assert "CANCELLED AT" in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]
    assert float(result.stdout.split("CANCELLED AT ")[1].split()[0]) > 50
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".aux.xml")) == ["f.tif"]
