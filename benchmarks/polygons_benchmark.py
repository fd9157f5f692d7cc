"""Polygons benchmark (OUTPUT_POLYGONS): :func:`engine.polygons.write_polygons` strip by strip against the whole
raster polygonised at once (``rasterio.features.shapes`` on the full array, one GeoPackage write), on a class
raster of large blobs that span many strips. Prints seconds, megapixels per second, the peak memory above the
imports and the polygon count and total area of each (equal: the strips leave no seam). Asserts nothing.

    <worker python> benchmarks/polygons_benchmark.py [--size 8000] [--classes 6] [--rows 0 256]

Each measurement runs in a Python of its own; its memory is the largest resident size sampled every 5 ms during the
run, less the resident size at its start (after the imports).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def make_raster(path: Path, size: int, classes: int, seed: int = 0) -> Path:
    """A ``size`` x ``size`` uint8 class raster of blobs: a coarse random grid of classes, smoothed and upsampled."""
    import rasterio
    from rasterio.transform import from_origin
    from scipy.ndimage import zoom

    rng = np.random.default_rng(seed)
    coarse = rng.random((classes, size // 100 + 2, size // 100 + 2))
    fine = np.argmax(np.stack([zoom(layer, 100, order=3)[:size, :size] for layer in coarse]), axis=0).astype(np.uint8)
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=1, dtype="uint8", crs="EPSG:32633",
                       transform=from_origin(500_000, 4_000_000, 10, 10), tiled=True, compress="deflate") as dst:
        dst.write(fine[None])
    return path


def resident_mb() -> float:
    """The resident memory of this process now (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20


class PeakMemory(threading.Thread):
    """Samples :func:`resident_mb` until stopped; ``peak`` is the largest sample."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self.running = resident_mb(), True
        self.start()

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, resident_mb())
            time.sleep(0.005)

    def stop(self) -> float:
        self.running = False
        self.join()
        return self.peak


def measure(mode: str, raster: Path, rows: int, out: Path) -> dict:
    """One run, in this process: seconds, peak memory above the imports, polygons and their area."""
    import geopandas
    import rasterio
    import shapely  # noqa: F401

    from engine.events import NULL_REPORTER
    from engine.polygons import PolygonOptions, every_value, write_polygons

    baseline, sampler = resident_mb(), PeakMemory()
    started = time.perf_counter()
    if mode == "strips":
        summary = write_polygons(raster, [1], every_value(), str(out), PolygonOptions(raster.name, "bench", {}),
                                 NULL_REPORTER, rows=rows or None)
        count, area = summary["POLYGONS"], summary["POLYGON_AREA"]
    else:
        from rasterio.features import shapes
        from shapely.geometry import shape

        with rasterio.open(raster) as src:
            data, transform, crs = src.read(1), src.transform, src.crs
        pieces = [(int(v), shape(g)) for g, v in shapes(data, transform=transform)]
        frame = geopandas.GeoDataFrame({"class_value": [v for v, _ in pieces]}, geometry=[p for _, p in pieces],
                                       crs=crs)
        frame.to_file(out, engine="pyogrio")
        count, area = len(frame), float(frame.area.sum())
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_mb": sampler.stop() - baseline, "polygons": count, "area": area}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8000)
    parser.add_argument("--classes", type=int, default=6)
    parser.add_argument("--rows", type=int, nargs="+", default=[0, 256],
                        help="strip heights of write_polygons to measure (0: its default, 64 MB of pixels)")
    parser.add_argument("--measure", nargs=3, metavar=("MODE", "RASTER", "ROWS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        mode, raster, rows = args.measure
        print(json.dumps(measure(mode, Path(raster), int(rows), Path(raster).with_name(f"{mode}_{rows}.gpkg"))))
        return 0
    with tempfile.TemporaryDirectory(prefix="iamap-polygons-") as folder:
        raster = make_raster(Path(folder) / "classes.tif", args.size, args.classes)
        megapixels = args.size * args.size / 1e6
        print(f"{args.size} x {args.size} class raster ({megapixels:.0f} Mpx, {args.classes} classes of blobs)")
        for mode, rows in [("whole", 0)] + [("strips", r) for r in args.rows]:
            result = subprocess.run([sys.executable, __file__, "--measure", mode, str(raster), str(rows)],
                                    capture_output=True, text=True, check=True)
            figures = json.loads(result.stdout.strip().splitlines()[-1])
            label = "whole raster at once" if mode == "whole" else \
                f"strips of {rows or 'default'} rows"
            print(f"{label:28s} {figures['seconds']:7.2f} s  {megapixels / figures['seconds']:6.2f} Mpx/s  "
                  f"peak +{figures['peak_mb']:7.1f} MB  {figures['polygons']} polygons, "
                  f"{figures['area'] / 1e6:.4f} km\u00b2")
    return 0


if __name__ == "__main__":
    sys.exit(main())
