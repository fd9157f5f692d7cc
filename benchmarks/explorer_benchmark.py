"""Similarity explorer benchmark: load time (first answer) and per-click latency of the long-lived server
(``engine.similarity_server``) in its own process, as QGIS runs it, on a generated 384-band float32 feature
raster; peak RSS of the server. Prints numbers; asserts nothing (the goal: clicks after the first in <= 0.5 s,
the load in <= 10 s on 2048 x 2048 x 384).

    <worker python> benchmarks/explorer_benchmark.py [--size 2048] [--bands 384] [--clicks 5]

The raster (6.4 GB for the defaults, uncompressed) and the server's memory-mapped features are deleted after.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.estimator_benchmark import make_feature_raster  # noqa: E402


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--bands", type=int, default=384)
    parser.add_argument("--clicks", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="iamap-bench-"))
    try:
        raster = work / "features.tif"
        start = time.perf_counter()
        make_feature_raster(raster, args.size, args.bands)
        print(f"raster {args.size} x {args.size} x {args.bands} float32 written in {time.perf_counter() - start:.1f} s")
        start = time.perf_counter()
        server = subprocess.Popen([sys.executable, "-m", "engine.similarity_server", str(raster), "--workdir",
                                   str(work / "server")], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True)
        ready = json.loads(server.stdout.readline())
        print(f"load: {time.perf_counter() - start:.2f} s (server's own count {ready['seconds']} s)")
        for click in range(args.clicks):
            x = 500000 + 10 * (args.size * (click + 0.5) / args.clicks)
            request = {"id": click, "op": "click", "x": x, "y": 4000000 - 10 * args.size / 2, "add": click % 2 == 1}
            start = time.perf_counter()
            server.stdin.write(json.dumps(request) + "\n")
            server.stdin.flush()
            reply = json.loads(server.stdout.readline())
            if reply.get("preview"):
                print(f"click {click + 1}: preview {time.perf_counter() - start:.3f} s round trip (compute + write "
                      f"{reply['seconds']} s)")
                reply = json.loads(server.stdout.readline())
            print(f"click {click + 1}: full map {time.perf_counter() - start:.3f} s round trip (compute + write "
                  f"{reply['seconds']} s), {reply['references']} reference(s), ok={reply['ok']}")
        start = time.perf_counter()
        server.stdin.write(json.dumps({"id": "mask", "op": "mask", "threshold": 0.8,
                                       "output": str(work / "mask.gpkg")}) + "\n")
        server.stdin.flush()
        reply = json.loads(server.stdout.readline())
        print(f"mask export: {time.perf_counter() - start:.2f} s, {reply.get('polygons')} polygon(s)")
        print(f"server peak RSS: {peak_rss_mib(server.pid):.0f} MiB (features memory-mapped: "
              f"{args.size ** 2 * args.bands * 2 / 2**20:.0f} MiB of float16)")
        server.stdin.write('{"op": "quit"}\n')
        server.stdin.flush()
        server.wait(30)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
