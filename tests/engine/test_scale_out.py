"""SCHEDULER: the encoder and the block-wise predictions on a Dask cluster give the single-machine outputs.

The cluster is a LocalCluster of two worker processes (one thread each) whose workers have only the
pip-installed engine (``iamap.engine``) while this process, the client, runs it as ``engine``
(:mod:`testsupport.dask_cluster`): every test also checks that the task functions reach the workers by name.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio

from engine.encoder import run_encoder
from engine.errors import ParameterError
from engine.events import Reporter
from engine.ml import run_ml
from engine.worker import run_tool

from testsupport.dask_cluster import install_engine, local_cluster, worker_pids
from ..fixtures import labelled_points, regions_raster, write_raster

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
#: RUNTIME torch: the cluster's workers run the reference runtime (engine.runtimes), so the local run compared with
#: them does too
TINY = {"BACKBONE_NAME": "vit_tiny_patch16_224", "PRETRAINED": False, "PRECISION": "fp32", "RUNTIME": "torch"}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return install_engine(tmp_path_factory.mktemp("engine"))


@pytest.fixture(scope="module")
def scheduler(site, tmp_path_factory):
    with local_cluster(tmp_path_factory.mktemp("cluster"), site) as (address, _):
        yield address


def nodata_raster(path):
    """3-band uint8 raster of 200 x 168 px with a nodata hole (0) covering whole and partial cells."""
    data = np.random.default_rng(3).integers(1, 250, (3, 168, 200)).astype(np.uint8)
    data[:, 30:90, 50:120] = 0
    return write_raster(path, data, nodata=0)


def narrow_raster(path):
    """3-band uint8 raster of 48 x 168 px with a nodata hole: with SIZE 32 and STRIDE 16, 10 rows of 2 tiles
    (a block per tile row with BATCH_SIZE 1), cheap enough to encode three times."""
    data = np.random.default_rng(4).integers(1, 250, (3, 168, 48)).astype(np.uint8)
    data[:, 40:75, 10:30] = 0
    return write_raster(path, data, nodata=0)


def read(path):
    with rasterio.open(path) as src:
        return src.read(), src.profile


def messages(reporter) -> str:
    return "\n".join(e.get("message", "") for e in reporter.events)


def test_encoder_on_the_cluster_equals_the_local_encoder_with_nodata_and_overlap(tmp_path, scheduler):
    raster = nodata_raster(tmp_path / "in.tif")
    params = {"INPUT": str(raster), "SIZE": 64, "STRIDE": 32, "BATCH_SIZE": 4, **TINY}
    run_encoder({**params, "OUTPUT": str(tmp_path / "local.tif")}, Reporter())
    reporter = Reporter()
    outputs = run_encoder({**params, "OUTPUT": str(tmp_path / "cluster.tif"), "SCHEDULER": scheduler}, reporter)
    local, local_profile = read(tmp_path / "local.tif")
    cluster, profile = read(tmp_path / "cluster.tif")
    assert profile["transform"] == local_profile["transform"] and cluster.shape == local.shape
    assert cluster.shape[0] == 192
    assert np.array_equal(np.isnan(cluster), np.isnan(local)) and np.isnan(local).any()
    np.testing.assert_allclose(cluster, local, rtol=1e-4, atol=1e-5)
    text = messages(reporter)
    assert "Dask scheduler tcp://" in text and "2 worker(s)" in text and "Encoding on the cluster" in text
    assert outputs["tiles_encoded"] > 0


def test_a_worker_killed_mid_run_costs_only_its_blocks(tmp_path, scheduler):
    """The worker that returned the first block is killed (SIGKILL) while others are in flight; Dask runs its
    blocks again (its nanny starts a new worker) and the output is the uninterrupted one."""
    raster = narrow_raster(tmp_path / "in.tif")
    params = {"INPUT": str(raster), "SIZE": 32, "STRIDE": 16, "BATCH_SIZE": 1, **TINY}
    run_encoder({**params, "OUTPUT": str(tmp_path / "local.tif")}, Reporter())
    pids = worker_pids(scheduler)
    killed = []

    class KillingReporter(Reporter):
        def text(self, message):
            super().text(message)
            if message.startswith("Worker tcp://") and not killed:  # the first block's result is in
                worker = message.split()[1].rstrip(":")
                os.kill(pids[worker], signal.SIGKILL)
                killed.append(worker)

    reporter = KillingReporter()
    run_encoder({**params, "OUTPUT": str(tmp_path / "cluster.tif"), "SCHEDULER": scheduler}, reporter)
    assert killed and len(pids) == 2
    assert killed[0] not in worker_pids(scheduler)  # the worker is gone: a new one took its place
    local, _ = read(tmp_path / "local.tif")
    cluster, _ = read(tmp_path / "cluster.tif")
    np.testing.assert_allclose(cluster, local, rtol=1e-4, atol=1e-5)
    assert np.array_equal(np.isnan(cluster), np.isnan(local))


def test_killing_the_client_releases_its_blocks_on_the_cluster(tmp_path, scheduler):
    """QGIS cancels by killing its worker, the Dask client: the scheduler then drops every block of the run."""
    import json
    import subprocess
    import sys

    from distributed import Client

    params = tmp_path / "params.json"
    params.write_text(json.dumps({"INPUT": str(narrow_raster(tmp_path / "in.tif")), "SIZE": 32, "STRIDE": 16,
                                  "BATCH_SIZE": 1, **TINY, "OUTPUT": str(tmp_path / "o.tif"),
                                  "SCHEDULER": scheduler}))
    process = subprocess.Popen([sys.executable, "-m", "engine.worker", "encoder", str(params)], cwd=REPO,
                               stdout=subprocess.PIPE, text=True)
    for line in process.stdout:
        if "Worker tcp://" in line:  # blocks are in flight
            break
    process.kill()
    process.wait()
    with Client(scheduler, timeout=10, set_as_default=False) as client:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            held = [key for keys in client.has_what().values() for key in keys]
            running = [key for keys in client.processing().values() for key in keys]
            if not held and not running:
                break
            time.sleep(0.2)
    assert not held and not running, (held, running)
    assert not (tmp_path / "o.tif").exists()


def test_resume_submits_only_the_blocks_after_the_durable_rows(tmp_path, scheduler, monkeypatch):
    from engine import scale_out

    raster = narrow_raster(tmp_path / "in.tif")
    params = {"INPUT": str(raster), "SIZE": 32, "STRIDE": 16, "BATCH_SIZE": 1, **TINY}
    run_encoder({**params, "OUTPUT": str(tmp_path / "local.tif")}, Reporter())
    starts = []
    original = scale_out._ordered_results

    def interrupted(client, submit, block_starts, in_flight):
        block_starts = list(block_starts)
        starts.append(block_starts)
        for index, result in enumerate(original(client, submit, block_starts, in_flight)):
            if len(starts) == 1 and index == 6:
                raise KeyboardInterrupt  # the run is cut after six blocks (of one tile row)
            yield result

    monkeypatch.setattr(scale_out, "_ordered_results", interrupted)
    cluster_params = {**params, "OUTPUT": str(tmp_path / "cluster.tif"), "SCHEDULER": scheduler}
    with pytest.raises(KeyboardInterrupt):
        run_encoder(cluster_params, Reporter())
    reporter = Reporter()
    run_encoder(cluster_params, reporter)
    assert "Resuming:" in messages(reporter)
    # 32 output rows (two blocks of the file) were durable: the second run starts at the tile row touching row 32
    assert starts[0][:2] == [0, 1] and starts[1][0] == 3
    local, _ = read(tmp_path / "local.tif")
    cluster, _ = read(tmp_path / "cluster.tif")
    np.testing.assert_allclose(cluster, local, rtol=1e-4, atol=1e-5)


def test_reduction_and_cluster_on_the_cluster_equal_the_local_ones(tmp_path, scheduler):
    raster, _ = regions_raster(tmp_path / "r.tif", 120, 90, regions=4, nodata_corner=12)
    for tool, extra in (("reduction", {"N_COMPONENTS": 3}), ("cluster", {"N_CLUSTERS": 4})):
        results = {}
        for name, scheduler_value in (("local", ""), ("cluster", scheduler)):
            reporter = Reporter()
            status = run_tool(tool, {"INPUT": str(raster), **extra, "OUTPUT": str(tmp_path / f"{tool}-{name}.tif"),
                                     "SCHEDULER": scheduler_value}, reporter)
            assert status == 0, messages(reporter)
            results[name] = (read(tmp_path / f"{tool}-{name}.tif")[0], reporter.events[-1]["outputs"])
        (local, local_outputs), (cluster, outputs) = results["local"], results["cluster"]
        if tool == "reduction":
            np.testing.assert_allclose(cluster, local, rtol=1e-4, atol=1e-5)
            assert np.isnan(cluster[:, :12, :12]).all()
            np.testing.assert_allclose(outputs["DISPLAY_RANGES"], local_outputs["DISPLAY_RANGES"], rtol=1e-4)
        else:
            assert np.array_equal(cluster, local) and (cluster[0, :12, :12] == -32768).all()
            assert outputs["CLUSTER_SIZES"] == local_outputs["CLUSTER_SIZES"]
            assert outputs["SILHOUETTE"] == pytest.approx(local_outputs["SILHOUETTE"], rel=1e-6)


def test_ml_prediction_and_confidence_on_the_cluster_equal_the_local_ones(tmp_path, scheduler):
    raster, truth = regions_raster(tmp_path / "r.tif", 128, 96, regions=4, noise=0.3, nodata_corner=16)
    points = labelled_points(tmp_path / "points.gpkg", raster, truth, 12, names=lambda k: "abcd"[k])
    outputs = {}
    for name, scheduler_value in (("local", ""), ("cluster", scheduler)):
        outputs[name] = run_ml({"INPUT": str(raster), "TEMPLATE": str(points), "GT_COL": "label", "CV": "none",
                                "OUTPUT": str(tmp_path / f"{name}.tif"),
                                "OUTPUT_CONFIDENCE": str(tmp_path / f"{name}-p.tif"), "SCHEDULER": scheduler_value},
                               Reporter())
    assert np.array_equal(read(tmp_path / "cluster.tif")[0], read(tmp_path / "local.tif")[0])
    np.testing.assert_allclose(read(tmp_path / "cluster-p.tif")[0], read(tmp_path / "local-p.tif")[0], rtol=1e-6)
    assert outputs["cluster"]["CLASS_PIXELS"] == outputs["local"]["CLASS_PIXELS"]


def test_similarity_on_the_cluster_equals_the_local_one(tmp_path, scheduler):
    raster, truth = regions_raster(tmp_path / "r.tif", 90, 60, regions=3, nodata_corner=8)
    points = labelled_points(tmp_path / "points.gpkg", raster, truth, 5)
    for name, scheduler_value in (("local", ""), ("cluster", scheduler)):
        reporter = Reporter()
        status = run_tool("similarity", {"INPUT": str(raster), "TEMPLATE": str(points), "AGGREGATION": "max",
                                         "OUTPUT": str(tmp_path / f"{name}.tif"), "SCHEDULER": scheduler_value},
                          reporter)
        assert status == 0, messages(reporter)
    local, cluster = read(tmp_path / "local.tif")[0], read(tmp_path / "cluster.tif")[0]
    assert np.isnan(cluster[0, :8, :8]).all() and np.nanmax(cluster) > 0.99
    np.testing.assert_allclose(cluster, local, rtol=1e-5, atol=1e-6)


def test_an_unreachable_scheduler_fails_fast_saying_how_to_start_one(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    reporter = Reporter()
    started = time.monotonic()
    status = run_tool("encoder", {"INPUT": str(nodata_raster(tmp_path / "in.tif")), **TINY,
                                  "OUTPUT": str(tmp_path / "out.tif"), "SCHEDULER": f"tcp://127.0.0.1:{port}"},
                      reporter)
    assert status == 1 and time.monotonic() - started < 5
    error = reporter.events[-1]
    assert error["parameter"] == "SCHEDULER"
    assert error["message"].startswith(f"SCHEDULER: cannot reach a Dask scheduler at tcp://127.0.0.1:{port}")
    assert "dask scheduler" in error["message"] and f"dask worker tcp://127.0.0.1:{port}" in error["message"]
    assert not (tmp_path / "out.tif").exists()


@pytest.mark.parametrize("value", ["localhost", "http://host:8786", "tcp://host:port"])
def test_a_malformed_address_is_named(value, tmp_path):
    with pytest.raises(ParameterError, match=r"SCHEDULER: .* is not a Dask scheduler address: give tcp://host:port"):
        run_encoder({"INPUT": str(nodata_raster(tmp_path / "in.tif")), "OUTPUT": str(tmp_path / "o.tif"),
                     "SCHEDULER": value}, Reporter())


def test_workers_without_the_engine_are_named(tmp_path):
    raster, _ = regions_raster(tmp_path / "r.tif", 40, 30)
    with local_cluster(tmp_path / "cluster", None, workers=1) as (address, _):
        reporter = Reporter()
        status = run_tool("reduction", {"INPUT": str(raster), "OUTPUT": str(tmp_path / "o.tif"),
                                        "SCHEDULER": address}, reporter)
    error = reporter.events[-1]
    assert status == 1 and error["parameter"] == "SCHEDULER", error
    assert "lacks the IAMAP engine (the package iamap.engine)" in error["message"]
    assert "worker tcp://127.0.0.1:" in error["message"] and "pip install" in error["message"]


def test_an_input_the_workers_cannot_read_is_named(tmp_path, scheduler, monkeypatch):
    """The client reads the input (to plan) but the workers look for it at another path: the error names the
    worker, the input and what SCHEDULER needs."""
    from engine import scale_out

    raster = nodata_raster(tmp_path / "in.tif")
    original = scale_out.encoder_spec
    monkeypatch.setattr(scale_out, "encoder_spec",
                        lambda plan: {**original(plan), "input": str(tmp_path / "elsewhere" / "in.tif")})
    with pytest.raises(ParameterError) as info:
        run_encoder({"INPUT": str(raster), "SIZE": 64, **TINY, "OUTPUT": str(tmp_path / "o.tif"),
                     "SCHEDULER": scheduler}, Reporter())
    message = str(info.value)
    assert message.startswith("INPUT: worker tcp://127.0.0.1:") and "elsewhere/in.tif" in message
    assert "readable by every worker at the same path" in message


def report(gpus: int = 0, gpu_resource: bool = False, cuda_bf16: bool = False, cpu_bf16: bool = False) -> dict:
    return {"engine": "x", "missing": [], "nthreads": 4, "gpus": gpus, "cuda_bf16": cuda_bf16, "cpu_bf16": cpu_bf16,
            "resources": {"GPU": 1} if gpu_resource else {}}


@pytest.mark.parametrize("reports, device, precision, expected", [
    ({"a": report(), "b": report(cpu_bf16=True)}, "auto", "auto", ("cpu", "fp32")),  # bf16 only where all have it
    ({"a": report(cpu_bf16=True), "b": report(cpu_bf16=True)}, "auto", "auto", ("cpu", "bf16")),
    ({"a": report(1, True, cuda_bf16=True), "b": report(1, True)}, "auto", "auto", ("cuda", "fp16")),
    ({"a": report(1, True, cuda_bf16=True), "b": report()}, "auto", "auto", ("cuda", "bf16")),  # GPU workers only
    ({"a": report(1, True, cuda_bf16=True)}, "cpu", "fp32", ("cpu", "fp32")),
])
def test_device_and_precision_are_the_same_on_every_worker(reports, device, precision, expected):
    from engine.scale_out import EncoderCluster

    chosen, resolved = EncoderCluster(None, reports, Reporter()).device_and_precision(device, precision)
    assert (chosen.type, resolved) == expected


def test_cuda_without_gpu_workers_says_how_to_start_them():
    from engine.scale_out import EncoderCluster

    with pytest.raises(ParameterError, match=r"DEVICE: cuda was asked for but no worker of the cluster advertises a "
                                             r"GPU: start one worker per GPU with .*--resources GPU=1"):
        EncoderCluster(None, {"a": report(gpus=1)}, Reporter()).device_and_precision("cuda", "auto")
    with pytest.raises(ParameterError, match=r"DEVICE: worker\(s\) a advertise a GPU resource but PyTorch sees no "
                                             r"CUDA GPU there"):
        EncoderCluster(None, {"a": report(gpu_resource=True)}, Reporter()).device_and_precision("cuda", "auto")


def test_a_list_of_rasters_is_encoded_on_the_cluster_one_after_the_other(tmp_path, scheduler, capsys):
    from engine.cli import main

    rasters = [nodata_raster(tmp_path / "a.tif"), narrow_raster(tmp_path / "b.tif")]
    common = ["--SIZE", "64", "--STRIDE", "32", "--BATCH_SIZE", "4", "--BACKBONE_NAME", TINY["BACKBONE_NAME"],
              "--PRETRAINED", "false", "--PRECISION", "fp32"]
    assert main(["encoder", "--INPUT", *map(str, rasters), *common, "--SCHEDULER", scheduler,
                 "--OUTPUT", str(tmp_path / "cluster" / "{name}.tif")]) == 0
    captured = capsys.readouterr()
    assert [r["INPUT"] for r in json.loads(captured.out)] == [str(r) for r in rasters]
    assert captured.err.count("Encoding on the cluster") == 2
    for raster in rasters:
        params = {"INPUT": str(raster), "SIZE": 64, "STRIDE": 32, "BATCH_SIZE": 4, **TINY,
                  "OUTPUT": str(tmp_path / "local" / raster.name)}
        run_encoder(params, Reporter())
        local, _ = read(tmp_path / "local" / raster.name)
        cluster, _ = read(tmp_path / "cluster" / raster.name)
        np.testing.assert_allclose(cluster, local, rtol=1e-4, atol=1e-5)


def test_a_peer_that_greets_like_dask_then_sends_garbage_is_a_scheduler_error_not_memory_nor_a_traceback(tmp_path):
    import subprocess
    import sys

    from testsupport.fake_servers import DASK_HEADER_THEN_GARBAGE, greeter

    raster, _ = regions_raster(tmp_path / "in.tif", 32, 32, bands=3)
    with greeter(DASK_HEADER_THEN_GARBAGE) as address:
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "engine.cli", "cluster", "--INPUT", str(raster), "--OUTPUT",
                                 str(tmp_path / "c.tif"), "--SCHEDULER", address], capture_output=True, text=True,
                                cwd=REPO, timeout=120)
        seconds = time.monotonic() - started
    assert result.returncode == 1 and seconds < 30
    assert f"SCHEDULER: {address} answers but is not a Dask scheduler" in result.stderr
    assert "MemoryError" in result.stderr  # what Dask raised, quoted: not taken for a lack of memory
    assert "Out of memory" not in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]
