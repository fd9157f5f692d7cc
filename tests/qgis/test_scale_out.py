"""SCHEDULER through the real QGIS: ``qgis_process run iamap:encoder --SCHEDULER=...`` (the worker started by QGIS
from the plugin folder is the Dask client) gives the single-machine output, on a LocalCluster of two worker
processes that have only the pip-installed engine."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from testsupport.dask_cluster import install_engine, local_cluster
from ..fixtures import write_raster

pytestmark = pytest.mark.qgis
#: RUNTIME torch: the runtime of the cluster's workers, for the local runs compared with them
TINY = {"BACKBONE_NAME": "vit_tiny_patch16_224", "PRETRAINED": "false", "PRECISION": "fp32", "RUNTIME": "torch"}


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory):
    site = install_engine(tmp_path_factory.mktemp("engine"))
    with local_cluster(tmp_path_factory.mktemp("cluster"), site) as (address, _):
        yield address


def read(path):
    with rasterio.open(path) as src:
        return src.read(), src.transform


def test_qgis_process_encodes_on_the_cluster_what_it_encodes_here(qgis, tmp_path, scheduler):
    data = np.random.default_rng(5).integers(1, 250, (3, 150, 180)).astype(np.uint8)
    data[:, 20:70, 40:110] = 0  # nodata: whole and partial cells
    raster = write_raster(tmp_path / "in.tif", data, nodata=0)
    params = {"INPUT": raster, "SIZE": 64, "STRIDE": 32, "BATCH_SIZE": 4, **TINY}
    qgis.run("iamap:encoder", {**params, "OUTPUT": tmp_path / "local.tif"})
    result = qgis.run("iamap:encoder", {**params, "OUTPUT": tmp_path / "cluster.tif", "SCHEDULER": scheduler})
    assert result["results"]["OUTPUT"] == str(tmp_path / "cluster.tif")
    (local, local_transform), (cluster, transform) = read(tmp_path / "local.tif"), read(tmp_path / "cluster.tif")
    assert transform == local_transform and cluster.shape == local.shape and cluster.shape[0] == 192
    assert np.array_equal(np.isnan(cluster), np.isnan(local)) and np.isnan(local).any()
    np.testing.assert_allclose(cluster, local, rtol=1e-4, atol=1e-5)


def test_qgis_process_reduces_on_the_cluster_what_it_reduces_here(qgis, tmp_path, scheduler):
    data = np.random.default_rng(6).normal(0, 1, (6, 80, 90)).astype(np.float32)
    data[:, :10, :10] = np.nan
    raster = write_raster(tmp_path / "in.tif", data, nodata=float("nan"))
    for name, extra in (("local", {}), ("cluster", {"SCHEDULER": scheduler})):
        qgis.run("iamap:reduction", {"INPUT": raster, "N_COMPONENTS": 3, "OUTPUT": tmp_path / f"{name}.tif", **extra})
    local, cluster = read(tmp_path / "local.tif")[0], read(tmp_path / "cluster.tif")[0]
    assert np.isnan(cluster[:, :10, :10]).all()
    np.testing.assert_allclose(cluster, local, rtol=1e-4, atol=1e-5)


def test_an_unreachable_scheduler_fails_in_qgis_with_the_address_and_how_to_start_one(qgis, tmp_path):
    import socket

    from .conftest import AlgorithmFailed

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    raster = write_raster(tmp_path / "in.tif", np.ones((3, 40, 40), np.uint8))
    with pytest.raises(AlgorithmFailed) as info:
        qgis.run("iamap:encoder", {"INPUT": raster, **TINY, "OUTPUT": tmp_path / "o.tif",
                                   "SCHEDULER": f"tcp://127.0.0.1:{port}"})
    text = info.value.result.stdout + info.value.result.stderr
    assert f"SCHEDULER: cannot reach a Dask scheduler at tcp://127.0.0.1:{port}" in text and "dask worker" in text
