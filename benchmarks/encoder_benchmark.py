"""Encoder benchmark: end-to-end throughput against the model's own forward, peak memory against raster size,
and bf16 against fp32 features. Prints numbers; asserts nothing.

    <worker python> benchmarks/encoder_benchmark.py [--sizes 2048 4096] [--model vit_small_patch16_224]

Each encoder run is a separate worker process (as in QGIS), so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.worker_process import run_tool  # noqa: E402


def make_raster(path: Path, size: int) -> None:
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(0)
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=3, dtype="uint8", crs="EPSG:32633",
                       transform=from_origin(500000, 4000000, 10, 10), tiled=True) as dst:
        for row in range(0, size, 512):
            h = min(512, size - row)
            block = rng.integers(0, 255, (3, h, size), dtype=np.uint8)
            dst.write(block, window=rasterio.windows.Window(0, row, size, h))


def bare_forward(model_name: str, batch: int, precision: str, seconds: float = 8.0) -> float:
    """Tiles/s of model.forward_features alone on random batches (same threads, batch and precision)."""
    import timm
    import torch

    model = timm.create_model(model_name, pretrained=False, num_classes=0).eval()
    x = torch.randn(batch, 3, 224, 224)
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[precision]
    with torch.inference_mode(), torch.autocast("cpu", dtype=dtype, enabled=precision != "fp32"):
        model.forward_features(x)
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            model.forward_features(x)
            n += batch
    return n / (time.perf_counter() - start)


def run_encoder_process(params: dict) -> tuple[dict, float]:
    """Run the encoder tool in a worker process; return its outputs and peak RSS (MiB)."""
    outputs, _, _, peak = run_tool("encoder", params)
    return outputs, peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096])
    parser.add_argument("--model", default="vit_small_patch16_224")
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    from engine.devices import choose_precision

    import torch

    precision = choose_precision("auto", torch.device("cpu"))
    work = Path(tempfile.mkdtemp(prefix="iamap-bench-"))
    print(f"model {args.model}, batch {args.batch}, precision {precision}, threads {torch.get_num_threads()}")
    bare = {p: bare_forward(args.model, args.batch, p) for p in ("fp32", "bf16")}
    print(f"bare forward_features: fp32 {bare['fp32']:.2f} tiles/s, bf16 {bare['bf16']:.2f} tiles/s")
    common = {"BACKBONE_NAME": args.model, "PRETRAINED": False, "BATCH_SIZE": args.batch, "RESUME": False}
    for size in sorted(args.sizes):
        raster = work / f"r{size}.tif"
        make_raster(raster, size)
        for stride in (224, 112):
            out, peak = run_encoder_process({**common, "INPUT": str(raster), "OUTPUT": str(work / f"f{size}_{stride}.tif"),
                                             "STRIDE": stride, "PRECISION": precision})
            print(f"{size}x{size} stride {stride}: {out['tiles']} tiles, {out['tiles_per_second']:.2f} tiles/s "
                  f"end to end = {out['tiles_per_second'] / bare[precision]:.2f} x bare forward ({precision}); "
                  f"peak RSS {peak:.0f} MiB")
    raster = work / f"r{min(args.sizes)}.tif"
    outs = {}
    for p in ("fp32", "bf16"):
        outs[p], _ = run_encoder_process({**common, "INPUT": str(raster), "OUTPUT": str(work / f"q_{p}.tif"),
                                          "PRECISION": p, "BACKBONE_NAME": args.model})
    import rasterio

    with rasterio.open(outs["fp32"]["OUTPUT"]) as a, rasterio.open(outs["bf16"]["OUTPUT"]) as b:
        fa, fb = a.read().reshape(a.count, -1), b.read().reshape(b.count, -1)
    cos = (fa * fb).sum(0) / (np.linalg.norm(fa, axis=0) * np.linalg.norm(fb, axis=0))
    print(f"bf16 vs fp32 features, per-pixel cosine similarity: min {cos.min():.6f}, "
          f"mean {cos.mean():.6f}, 1st percentile {np.percentile(cos, 1):.6f}; "
          f"max abs difference {np.abs(fa - fb).max():.4g} (features' std {fa.std():.4g})")


if __name__ == "__main__":
    main()
