"""Similarity benchmark: RANDOM_SAMPLES points drawn in a polygon over a generated feature raster; time to draw
them, to read the pixels under them, and of the whole tool in a worker process. Prints numbers; asserts nothing.

    <worker python> benchmarks/similarity_benchmark.py [--size 1000] [--bands 64] [--points 100000]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.estimator_benchmark import make_feature_raster  # noqa: E402
from benchmarks.worker_process import run_tool  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--bands", type=int, default=64)
    parser.add_argument("--points", type=int, default=100_000)
    args = parser.parse_args()
    import geopandas as gpd
    import rasterio
    from rasterio.windows import Window
    from shapely.geometry import box

    from engine.vectors import pixel_values, read_reference_points

    work = Path(tempfile.mkdtemp(prefix="iamap-bench-"))
    try:
        raster, polygon = work / "features.tif", work / "polygon.gpkg"
        make_feature_raster(raster, args.size, args.bands)
        with rasterio.open(raster) as src:
            inner = box(*src.bounds).buffer(-10 * src.res[0])
            gpd.GeoDataFrame({"id": [0]}, geometry=[inner], crs=src.crs).to_file(polygon)
            start = time.perf_counter()
            points = read_reference_points(str(polygon), src.crs, args.points)
            drawn = time.perf_counter()
            pixel_values(src, list(range(1, args.bands + 1)), Window(0, 0, src.width, src.height), points)
            read = time.perf_counter()
        _, events, wall, peak = run_tool("similarity", {"INPUT": str(raster), "TEMPLATE": str(polygon),
                                                        "RANDOM_SAMPLES": args.points, "OUTPUT": str(work / "s.tif")})
        progress = sum(e["type"] == "progress" for e in events)
        print(f"{args.size}x{args.size}, {args.bands} bands, {args.points} points: draw {drawn - start:.2f} s, pixels "
              f"under them {read - drawn:.2f} s; whole tool {wall:.1f} s ({progress} progress events), peak RSS "
              f"{peak:.0f} MiB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
