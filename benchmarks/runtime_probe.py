"""One runtime candidate of the encoder's model, measured in a process of its own (thread pools of two runtimes in
one process slow each other down): tiles/s, first-run and cached-run overhead, and its features on tiles of the
bundled sample scene (saved for the caller to compare with fp32). Run by ``encoder_benchmark.py``.

    <worker python> -m benchmarks.runtime_probe MODEL CANDIDATE BATCH SECONDS FEATURES.npy [THREADS]

Prints one JSON line. Besides tiles per second of wall time, tiles per CPU-second of this process: on a shared
machine the wall-time rate of a multi-threaded runtime collapses with the load (its threads wait for each other),
while one thread's rate per CPU-second barely moves, so ``THREADS`` 1 compares runtimes fairly there.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SCENE = REPO / "docs" / "sample" / "sample_rgb.tif"
#: candidate: (runtime, precision); "bf16-weights" is PyTorch with the weights cast to bf16 (no autocast)
CANDIDATES = {
    "torch fp32": ("torch", "fp32"),
    "torch bf16 autocast (reference)": ("torch", "bf16"),
    "torch bf16 weights": ("bf16-weights", "bf16"),
    "openvino bf16": ("openvino", "bf16"),
    "openvino fp32": ("openvino", "fp32"),
}


def scene_tiles(backbone, stride: int = 96) -> np.ndarray:
    """Tiles of the sample scene at ``stride``, normalised as the encoder does with the model's mean/std."""
    import rasterio

    with rasterio.open(SCENE) as src:
        data = src.read().astype(np.float32) / 255
    size = backbone.input_size[0]
    tiles = [data[:, y:y + size, x:x + size] for y in range(0, data.shape[1] - size + 1, stride)
             for x in range(0, data.shape[2] - size + 1, stride)]
    mean, std = (np.asarray(v, np.float32).reshape(-1, 1, 1) for v in (backbone.mean, backbone.std))
    return np.stack([(t - mean) / std for t in tiles])


def build(model: str, candidate: str, batch: int, cache: Path):
    """(backbone, forward, seconds to build it)."""
    import torch

    from engine.models import load_backbone
    from engine.runtimes import TorchForward, model_forward, runtime

    backbone = load_backbone("", model, pretrained=False)
    name, precision = CANDIDATES[candidate]
    started = time.perf_counter()
    if name == "bf16-weights":
        backbone.model.to(torch.bfloat16)

        def forward(x):
            with torch.inference_mode():
                return backbone.features(x.to(torch.bfloat16))
    elif name == "torch":
        forward = TorchForward(backbone, torch.device("cpu"), precision)
    else:
        forward = model_forward(runtime(name), backbone, torch.device("cpu"), precision, batch, cache_dir=cache)
        assert forward.runtime == name, f"{name} could not run {model}"
    forward(torch.zeros(batch, backbone.in_chans, *backbone.input_size))  # the first call's set-up counts
    return backbone, forward, time.perf_counter() - started


def main(model: str, candidate: str, batch: int, seconds: float, out: str, threads: int = 0) -> None:
    import torch

    if threads:
        torch.set_num_threads(threads)  # OpenVINO takes torch's thread count too (engine.openvino_runtime)
    with tempfile.TemporaryDirectory() as cache:
        backbone, forward, first = build(model, candidate, batch, Path(cache))
        _, _, cached = build(model, candidate, batch, Path(cache)) if "openvino" in candidate else (0, 0, first)
    tiles = torch.from_numpy(scene_tiles(backbone))
    features = torch.cat([forward(tiles[i:i + batch]).float() for i in range(0, len(tiles), batch)])
    np.save(out, features.permute(0, 2, 3, 1).reshape(-1, features.shape[1]).numpy())
    x = tiles[:batch].contiguous()
    n, started, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - started < seconds:
        forward(x)
        n += batch
    rate, cpu_rate = n / (time.perf_counter() - started), n / (time.process_time() - cpu)
    print(json.dumps({"tiles_per_second": rate, "tiles_per_cpu_second": cpu_rate, "first_s": first,
                      "cached_s": cached, "load": os.getloadavg()[0]}))


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5],
         int(sys.argv[6]) if len(sys.argv) > 6 else 0)
