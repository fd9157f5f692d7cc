"""Cluster benchmark (SCHEDULER): encoder throughput on a LocalCluster of 1 and 2 worker processes against this
machine alone, and the client-side assembly ceiling: the tiles/s the client sustains (fetching the blocks'
features, merging, writing) when the workers return precomputed features at no cost. Prints numbers; asserts
nothing.

    <worker python> benchmarks/cluster_benchmark.py [--size 1024] [--tile 64] [--model vit_tiny_patch16_224]
        [--ceiling-size 2048] [--ceiling-models vit_tiny_patch16_224 vit_base_patch16_224] [--quick]

Workers are started as users start them: a LocalCluster in a Python of its own whose workers have only the
pip-installed engine (a wheel of this folder, built once into a temporary folder), one thread each. Tiles are
resized to the model input (224 px), so a 64 px tile costs the model what a 224 px tile does. The throughput is
the encoder's own count (tiles encoded over the streaming time), as the tool logs it.

The ceiling: on every worker :func:`engine.scale_out_worker._encode_rows` is replaced (through ``client.run``, a
function sent by value from this script) by one that returns constant features of the model's shape for every
tile of the block without reading or encoding anything.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.encoder_benchmark import make_raster  # noqa: E402
from testsupport.dask_cluster import install_engine, local_cluster  # noqa: E402


def encode(raster: Path, out: Path, model: str, tile: int, scheduler: str = "", batch: int = 8) -> dict:
    from engine.encoder import run_encoder
    from engine.events import Reporter

    params = {"INPUT": str(raster), "OUTPUT": str(out), "BACKBONE_NAME": model, "PRETRAINED": False,
              "PRECISION": "fp32", "SIZE": tile, "BATCH_SIZE": batch, "RESUME": False, "SCHEDULER": scheduler}
    started = time.perf_counter()
    outputs = run_encoder(params, Reporter())
    outputs["wall"] = time.perf_counter() - started
    return outputs


def free_features_on_workers(dask_worker=None):
    """Run on every worker (sent by value): blocks come back as constant features, nothing read or encoded."""
    import sys as worker_sys
    import time as worker_time

    import numpy as worker_np

    name = "iamap.engine.scale_out_worker"
    scale_out = worker_sys.modules.get(name) or __import__(name, fromlist=["x"])
    if getattr(scale_out, "_benchmark_free", False):
        return "already"
    cache = {}

    def free_rows(spec, first_row, end_row):
        from iamap.engine.tiling import TileGrid

        started = worker_time.monotonic()
        grid = TileGrid(**spec["grid"])
        backbone, _ = scale_out._cached_backbone(spec["model"])  # for its feature size; loaded once
        positions = worker_np.array([(r, c) for r in range(first_row, end_row) for c in range(grid.cols)],
                                    worker_np.int32).reshape(-1, 2)
        key = (len(positions), grid.grid_h, grid.grid_w, backbone.dim)
        if key not in cache:
            cache[key] = worker_np.full(key, 0.5, worker_np.float32)
        return {"positions": positions, "features": cache[key],
                "cells": worker_np.ones(key[:3], bool), "seen": len(positions), "worker": dask_worker.address,
                "device": "none (precomputed features)", "precision": "fp32", "threads": 0,
                "seconds": worker_time.monotonic() - started}

    scale_out._encode_rows = free_rows
    scale_out._benchmark_free = True
    return "patched"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1024, help="raster side for the throughput runs (px)")
    parser.add_argument("--tile", type=int, default=64, help="SIZE (px); tiles are resized to 224")
    parser.add_argument("--model", default="vit_tiny_patch16_224")
    parser.add_argument("--ceiling-size", type=int, default=2048, help="raster side for the ceiling runs (px)")
    parser.add_argument("--ceiling-models", nargs="+", default=["vit_tiny_patch16_224", "vit_base_patch16_224"])
    parser.add_argument("--quick", action="store_true", help="small rasters (a smoke run)")
    args = parser.parse_args()
    if args.quick:
        args.size, args.ceiling_size, args.ceiling_models = 256, 1024, args.ceiling_models[:1]
    from distributed import Client

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        site = install_engine(root / "engine")
        raster = root / "in.tif"
        make_raster(raster, args.size)
        tiles = (args.size // args.tile) ** 2
        print(f"Throughput: {args.size} x {args.size} px, SIZE {args.tile} ({tiles} tiles resized to 224), "
              f"{args.model}, fp32, batch 8")
        encode(raster, root / "warm.tif", args.model, args.tile)  # first-call costs (kernels, caches) left out
        local = encode(raster, root / "local.tif", args.model, args.tile)
        print(f"  this machine alone (all cores): {local['tiles_per_second']:7.1f} tiles/s")
        for workers in (1, 2):
            with local_cluster(root / f"cluster{workers}", site, workers=workers) as (address, _):
                encode(raster, root / "warm.tif", args.model, args.tile, address)  # models loaded on the workers
                result = encode(raster, root / f"c{workers}.tif", args.model, args.tile, address)
                print(f"  LocalCluster, {workers} worker process(es) x 1 thread: {result['tiles_per_second']:7.1f} "
                      f"tiles/s ({result['wall']:.1f} s with connecting and planning)")

        big = root / "big.tif"
        make_raster(big, args.ceiling_size)
        tiles = (args.ceiling_size // args.tile) ** 2
        print(f"Client-side assembly ceiling: {args.ceiling_size} x {args.ceiling_size} px, SIZE {args.tile} "
              f"({tiles} tiles), 2 workers returning precomputed features; float32 uncompressed output")
        with local_cluster(root / "ceiling", site, workers=2) as (address, _):
            with Client(address, set_as_default=False) as client:
                client.run(free_features_on_workers)
            for model in args.ceiling_models:
                encode(big, root / "warm.tif", model, args.tile, address)
                result = encode(big, root / "ceiling.tif", model, args.tile, address)
                dim = {"vit_tiny_patch16_224": 192, "vit_small_patch16_224": 384, "vit_base_patch16_224": 768,
                       "vit_large_patch16_224": 1024}.get(model)
                rate = result["tiles_per_second"]
                volume = f", {rate * 14 * 14 * dim * 4 / 1e6:.0f} MB/s of features" if dim else ""
                print(f"  {model}: {rate:7.1f} tiles/s{volume}")


if __name__ == "__main__":
    main()
