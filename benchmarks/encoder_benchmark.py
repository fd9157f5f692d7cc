"""Encoder benchmark: the pipeline's own ceiling (a model that costs nothing), the model's runtimes side by side
(tiles/s, first-run overhead, cosine to fp32 features), end-to-end throughput against the model's bare eager
bf16-autocast forward in the same run, peak memory against raster size, and bf16 against fp32 features.
Prints numbers; asserts nothing.

    <worker python> benchmarks/encoder_benchmark.py [--sizes 2048 4096] [--models vit_small_patch16_224 ...]
        [--batch 8] [--formats] [--quick] [--runtime-check] [--repeat N]

``--runtime-check`` (about 4 minutes a repeat on 2 quiet cores): only the runtime table (ViT-Ti, ViT-S, ViT-B) and the
end-to-end encoder (default settings, 2048 x 2048) over the bare forward. ``--end-to-end``: only the latter, on the
``--sizes``, ``--models`` and ``--strides`` given (a bigger raster and ``--repeat`` steady the ratio).

Runtimes (``benchmarks/runtime_probe.py``) each run in a process of their own, alternated when repeated; their
cosine is per feature cell, on tiles of the bundled sample scene, to PyTorch fp32 features of the same model.

Each encoder run is a separate worker process (as in QGIS), so its peak RSS is its own. Rasters are 3-band
uint8 with random values; the throughput is the encoder's own count (tiles encoded over the streaming time,
model loading and file creation excluded), the same figure the tool logs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.runtime_probe import CANDIDATES  # noqa: E402
from benchmarks.worker_process import run_tool  # noqa: E402

RUNTIME_MODELS = ("vit_tiny_patch16_224", "vit_small_patch16_224", "vit_base_patch16_224")


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
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[precision]
    with torch.inference_mode(), torch.autocast("cpu", dtype=dtype, enabled=precision != "fp32"):
        model.forward_features(x)
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            model.forward_features(x)
            n += batch
    return n / (time.perf_counter() - start)


def probe(model: str, candidate: str, batch: int, seconds: float, features: Path, threads: int) -> dict:
    """One runtime candidate measured in its own process (benchmarks/runtime_probe.py)."""
    out = subprocess.run([sys.executable, "-m", "benchmarks.runtime_probe", model, candidate, str(batch),
                          str(seconds), str(features), str(threads)], cwd=REPO, capture_output=True, text=True)
    if out.returncode:
        return {"error": (out.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def compare_runtimes(models, batch: int, repeat: int, work: Path, threads: int = 0) -> None:
    """The runtime table: each candidate per model, medians over ``repeat`` alternated runs."""
    print(f"\n== runtimes, batch {batch}, 224 px, random weights, {threads or 'all'} thread(s); cosine per feature "
          "cell to torch fp32 on the sample scene's tiles; first run: build + first call (an export for OpenVINO), "
          "cached: the same from the cache")
    for model in models:
        runs: dict = {c: [] for c in CANDIDATES}
        for r in range(repeat):
            order = list(CANDIDATES) if r % 2 == 0 else list(reversed(CANDIDATES))
            for candidate in order:
                features = work / f"{model}_{len(runs[candidate])}_{candidate.split()[0]}_{candidate.split()[1]}.npy"
                runs[candidate].append(probe(model, candidate, batch, 3.0, features, threads))
        reference = np.load(next(work.glob(f"{model}_0_torch_fp32.npy")))
        reference_runs = runs["torch bf16 autocast (reference)"]
        base, cpu_base = (np.median([r[k] for r in reference_runs]) for k in ("tiles_per_second",
                                                                              "tiles_per_cpu_second"))
        print(f"{model}:")
        for candidate, results in runs.items():
            if "error" in results[0]:
                print(f"  {candidate:32s} failed: {results[0]['error']}")
                continue
            rate, cpu_rate = (np.median([r[k] for r in results]) for k in ("tiles_per_second", "tiles_per_cpu_second"))
            features = np.load(work / f"{model}_0_{candidate.split()[0]}_{candidate.split()[1]}.npy")
            cos = (features * reference).sum(1) / (np.linalg.norm(features, axis=1) * np.linalg.norm(reference, axis=1))
            first, cached = (np.median([r[k] for r in results]) for k in ("first_s", "cached_s"))
            loads = ", ".join(f"{r['load']:.1f}" for r in results)
            print(f"  {candidate:32s} {rate:6.1f} tiles/s ({rate / base:.2f} x reference), {cpu_rate:6.1f} per "
                  f"CPU-second ({cpu_rate / cpu_base:.2f} x), first run {first:5.1f} s, "
                  f"cached {cached:4.1f} s; cosine to fp32 min {cos.min():.5f}, 1st percentile "
                  f"{np.percentile(cos, 1):.5f}; load average {loads}")


def encode(params: dict, null_model: bool = False) -> tuple[dict, float]:
    """Run the encoder tool in a worker process; return its outputs and peak RSS (MiB)."""
    module = "benchmarks.null_model_worker" if null_model else "engine.worker"
    outputs, _, _, peak = run_tool("encoder", params, module=module)
    return outputs, peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096])
    parser.add_argument("--models", nargs="+", default=["vit_small_patch16_224", "vit_tiny_patch16_224"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--formats", action="store_true", help="also compare the OUTPUT_FORMAT choices")
    parser.add_argument("--quick", action="store_true", help="null model only")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each measurement (the median is printed too: "
                                                              "a shared or virtual machine varies by 10-20 %%)")
    parser.add_argument("--strides", type=int, nargs="+", default=[224, 112])
    parser.add_argument("--threads", type=int, default=0,
                        help="torch/OpenVINO threads of the runtime table (default: all; 1 compares runtimes fairly "
                             "on a loaded machine, see benchmarks/runtime_probe.py)")
    parser.add_argument("--runtime-check", action="store_true",
                        help="only the runtime table and the end-to-end encoder on 2048 x 2048")
    parser.add_argument("--end-to-end", action="store_true",
                        help="only the end-to-end encoder over the bare forward (--sizes, --models, --strides, "
                             "--repeat as given)")
    args = parser.parse_args()
    if args.runtime_check:
        args.sizes, args.models = [2048], ["vit_small_patch16_224", "vit_tiny_patch16_224"]
    import torch

    from engine.devices import choose_precision

    precision = choose_precision("auto", torch.device("cpu"))
    work = Path(tempfile.mkdtemp(prefix="iamap-bench-"))
    os.environ["IAMAP_RUNTIME_CACHE"] = str(work / "runtime-cache")  # the encoder runs' exports, not the user's
    print(f"CPU {os.cpu_count()} cores, torch threads {torch.get_num_threads()}; batch {args.batch}, "
          f"precision {precision}; rasters 3-band uint8")
    rasters = {}
    for size in sorted(args.sizes):
        rasters[size] = work / f"r{size}.tif"
        make_raster(rasters[size], size)
    big = max(rasters)
    common = {"PRETRAINED": False, "BATCH_SIZE": args.batch, "RESUME": False, "PRECISION": precision}
    if args.runtime_check:
        compare_runtimes(RUNTIME_MODELS, args.batch, args.repeat, work, args.threads)
        args.quick = False

    skip_ceiling = args.runtime_check or args.end_to_end
    if not skip_ceiling:
        print(f"\n== pipeline ceiling (model replaced by fixed tokens of its shape), {big}x{big}, 384 features; "
              f"load average {os.getloadavg()[0]:.2f}")
    for stride in [] if skip_ceiling else args.strides:
        rates = []
        for _ in range(args.repeat):
            out, peak = encode({**common, "BACKBONE_NAME": "vit_small_patch16_224", "INPUT": str(rasters[big]),
                                "OUTPUT": str(work / f"null_{stride}.tif"), "STRIDE": stride, "RUNTIME": "torch"},
                               null_model=True)
            rates.append(out["tiles_per_second"])
            print(f"stride {stride}: {out['tiles_encoded']} tiles, {out['tiles_per_second']:.0f} tiles/s; "
                  f"peak RSS {peak:.0f} MiB")
        if args.repeat > 1:
            print(f"stride {stride}: median {np.median(rates):.0f} tiles/s over {args.repeat} runs")
    if args.formats:
        from engine.catalog import OUTPUT_FORMATS

        print(f"\n== output formats, pipeline ceiling, stride 224, {big}x{big}")
        for fmt in OUTPUT_FORMATS:
            path = work / f"fmt_{fmt}.tif"
            out, _ = encode({**common, "BACKBONE_NAME": "vit_small_patch16_224", "INPUT": str(rasters[big]),
                             "OUTPUT": str(path), "OUTPUT_FORMAT": fmt, "RUNTIME": "torch"}, null_model=True)
            print(f"{fmt}: {out['tiles_per_second']:.0f} tiles/s, {path.stat().st_size / 2**20:.1f} MiB")
    if args.quick:
        return
    if not skip_ceiling:
        compare_runtimes(RUNTIME_MODELS, args.batch, args.repeat, work, args.threads)

    for model in args.models:
        print(f"\n== {model} ({precision}, batch {args.batch}, default RUNTIME); the bare eager forward_features "
              f"under {precision} autocast is measured just before each run, so both see the same machine")
        strides = [s for s in args.strides if "small" in model or s == 224]
        for size in sorted(rasters):
            for stride in strides:
                ratios = []
                for _ in range(args.repeat):
                    bare = bare_forward(model, args.batch, precision, seconds=5.0)
                    out, peak = encode({**common, "BACKBONE_NAME": model, "INPUT": str(rasters[size]),
                                        "OUTPUT": str(work / f"{model}_{size}_{stride}.tif"), "STRIDE": stride})
                    ratios.append(out["tiles_per_second"] / bare)
                    print(f"{size}x{size} stride {stride}: {out['tiles_encoded']} tiles, "
                          f"{out['tiles_per_second']:.1f} tiles/s end to end ({out['runtime']}), bare forward "
                          f"{bare:.1f} tiles/s: "
                          f"{ratios[-1]:.2f} x; peak RSS {peak:.0f} MiB; load average {os.getloadavg()[0]:.2f}")
                if args.repeat > 1:
                    print(f"{size}x{size} stride {stride}: median {np.median(ratios):.2f} x bare forward over "
                          f"{args.repeat} runs")

    if skip_ceiling:
        return
    small = min(rasters)
    outs = {}
    for p in ("fp32", "bf16"):
        # fp32: the reference runtime's; bf16: the default runtime's
        outs[p], _ = encode({**common, "BACKBONE_NAME": args.models[0], "INPUT": str(rasters[small]),
                             "OUTPUT": str(work / f"q_{p}.tif"), "PRECISION": p,
                             **({"RUNTIME": "torch"} if p == "fp32" else {})})
    import rasterio

    with rasterio.open(outs["fp32"]["OUTPUT"]) as a, rasterio.open(outs["bf16"]["OUTPUT"]) as b:
        fa, fb = a.read().reshape(a.count, -1), b.read().reshape(b.count, -1)
    cos = (fa * fb).sum(0) / (np.linalg.norm(fa, axis=0) * np.linalg.norm(fb, axis=0))
    print(f"\nbf16 ({outs['bf16']['runtime']}) vs fp32 (torch) features, per-pixel cosine similarity: "
          f"min {cos.min():.6f}, "
          f"mean {cos.mean():.6f}, 1st percentile {np.percentile(cos, 1):.6f}; "
          f"max abs difference {np.abs(fa - fb).max():.4g} (features' std {fa.std():.4g})")


if __name__ == "__main__":
    main()
