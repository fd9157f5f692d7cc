"""Similarity explorer benchmark: the first click, sent as the desktop sends it (right after starting the server,
whose start and load are included, as a user waits for them): when its first map comes (a coarse map while the
store loads, or the full map) and when its full map comes; the later clicks (median and max of their round
trips) and the peak RSS of the long-lived server (``engine.similarity_server``) in its own process, as QGIS
runs it, on a generated 384-band feature raster written the way the encoder writes it
(:data:`engine.catalog.OUTPUT_FORMATS`: pixel-interleaved, 256 x 16 tiles), for each format asked. Prints
numbers; asserts nothing (the goals: the first map in <= 2 s on 1024 x 1024 x 128, the first click in <= 10 s on
2048 x 2048 x 384, the later ones in <= 0.5 s).

    <worker python> benchmarks/explorer_benchmark.py [--size 2048] [--bands 384] [--clicks 5]
        [--formats float32,float16,float32_zstd] [--keep DIR] [--repo OTHER_CHECKOUT]

Each raster (6.4 GB for the defaults in float32) is read once before the server starts, so it is in the page
cache as just after an encoder run; it and the server's features are deleted after its format (unless --keep).
The server runs twice per format: on an empty persistent cache of features (the raster's first opening), then
reopening the raster (served by that cache). --repo runs the server of another checkout once per format on the
same rasters (a before/after comparison).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.estimator_benchmark import make_feature_raster  # noqa: E402
from engine.catalog import OUTPUT_FORMATS  # noqa: E402


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_server(raster: Path, workdir: Path, size: int, clicks: int, repo: Path = REPO, options=()) -> dict:
    """Start the server on ``raster``, click ``clicks`` times across the stripes (every second click adds a
    reference), export a mask, quit; the timings (seconds) and the peak RSS (MiB)."""
    def request(message: dict) -> dict:
        server.stdin.write(json.dumps(message) + "\n")
        server.stdin.flush()
        reply = json.loads(server.stdout.readline())
        while reply.get("preview"):  # the full map follows under the same id
            reply = json.loads(server.stdout.readline())
        if not reply.get("ok"):
            raise RuntimeError(f"server refused {message}: {reply}")
        return reply

    def click(number: int) -> dict:
        x = 500000 + 10 * (size * (number + 0.5) / clicks)
        return {"id": number, "op": "click", "x": x, "y": 4000000 - 10 * size / 2, "add": number % 2 == 1}

    start = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "engine.similarity_server", str(raster), "--workdir",
                               str(workdir), *options], cwd=repo, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        server.stdin.write(json.dumps(click(0)) + "\n")  # at once, as the desktop does
        server.stdin.flush()
        result = {"clicks": [], "first_map": None}
        while True:  # the ready reply, maybe a coarse map (before or after it), then the full map
            reply = json.loads(server.stdout.readline())
            if reply.get("op") == "ready":
                ready = reply
                result.update(ready=time.perf_counter() - start, load=ready["seconds"], cached=ready.get("cached"))
            elif not reply.get("ok"):
                raise RuntimeError(f"server refused the first click: {reply}")
            else:
                result["first_map"] = result["first_map"] or time.perf_counter() - start
                if not reply.get("preview"):
                    break
        result["clicks"].append(time.perf_counter() - start)
        start = time.perf_counter()
        for number in range(1, clicks):
            reply = request(click(number))
            result["clicks"].append(time.perf_counter() - start)
            start = time.perf_counter()
        result["map_seconds"] = reply["seconds"]
        reply = request({"id": "mask", "op": "mask", "threshold": 0.8, "output": str(workdir / "mask.gpkg")})
        result["mask"], result["polygons"] = time.perf_counter() - start, reply["polygons"]
        result["rss"] = peak_rss_mib(server.pid)
        cache = Path(options[options.index("--cache") + 1]) if "--cache" in options else None
        waited = time.perf_counter()
        while cache is not None and not ready.get("cached") and not list(cache.glob("*/store.json")) and \
                time.perf_counter() - waited < 120:
            time.sleep(0.5)  # the server writes its cache in the background: quitting before would drop it
        result["cache_wait"] = time.perf_counter() - waited
        server.stdin.write('{"op": "quit"}\n')
        server.stdin.flush()
        server.wait(60)
        return result
    finally:
        server.kill()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--bands", type=int, default=384)
    parser.add_argument("--clicks", type=int, default=5)
    parser.add_argument("--formats", default="float32,float16,float32_zstd",
                        help=f"comma-separated, among {', '.join(OUTPUT_FORMATS)}")
    parser.add_argument("--keep", default="", help="folder where the rasters are kept (and reused) between runs")
    parser.add_argument("--repo", default=str(REPO), help="plugin folder whose server runs (another checkout: a "
                                                          "before/after comparison on the same rasters)")
    args = parser.parse_args()
    print(f"load average {Path('/proc/loadavg').read_text().strip()}; {os.cpu_count()} CPU(s)")
    rows = []
    for output_format in args.formats.split(","):
        work = Path(tempfile.mkdtemp(prefix="iamap-explorer-bench-"))
        try:
            folder = Path(args.keep) if args.keep else work
            folder.mkdir(parents=True, exist_ok=True)
            raster = folder / f"features_{args.size}_{args.bands}_{output_format}.tif"
            if not raster.exists():
                start = time.perf_counter()
                make_feature_raster(raster, args.size, args.bands, output_format)
                print(f"{output_format}: raster {args.size} x {args.size} x {args.bands} written in "
                      f"{time.perf_counter() - start:.1f} s ({raster.stat().st_size / 2**30:.2f} GiB)", flush=True)
            with open(raster, "rb") as f:  # in the page cache, as just after the encoder wrote it
                while f.read(64 * 2**20):
                    pass
            # this checkout's server: first with an empty persistent cache (a raster never opened), then again
            # (reopened: served by the cache); another checkout's server as it comes
            options = [["--cache", str(work / "cache")]] * 2 if Path(args.repo).resolve() == REPO else [[]]
            for run, server_options in enumerate(options):
                result = run_server(raster, work / f"server{run}", args.size, args.clicks, Path(args.repo),
                                    server_options)
                later = result["clicks"][1:]
                label = output_format + (" reopened" if result["cached"] else "")
                row = (f"{label:24s} first click: first map {result['first_map']:6.2f} s, full map "
                       f"{result['clicks'][0]:6.2f} s (ready after {result['ready']:.2f} s, "
                       f"server's load {result['load']:.2f} s) | later clicks median {statistics.median(later):.3f} "
                       f"s, max {max(later):.3f} s | mask {result['mask']:.2f} s, {result['polygons']} polygon(s) | "
                       f"peak RSS {result['rss']:.0f} MiB | cache written {result['cache_wait']:.1f} s after")
                print(row, flush=True)
                rows.append(row)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print(f"load average {Path('/proc/loadavg').read_text().strip()}")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
