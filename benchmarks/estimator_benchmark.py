"""Reduction and cluster benchmark: wall time and peak RSS of PCA and KMeans on generated 384-band float32
feature rasters of two sizes (peak RSS must not grow with the raster), and UMAP/HDBSCAN fit and predict
times at the default sample size. Prints numbers; asserts nothing.

    <worker python> benchmarks/estimator_benchmark.py [--sizes 2000 4000] [--bands 384]
        [--manifold-size 400] [--manifold-bands 384 16]

Rasters are written uncompressed (a 4000 x 4000 x 384 float32 raster is 24.6 GB on disk) and deleted after.
Each run is a separate worker process, as in QGIS, measured alone.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.worker_process import run_tool  # noqa: E402


def make_feature_raster(path: Path, size: int, bands: int, output_format: str = "float32", regions: int = 6,
                        seed: int = 0) -> None:
    """Square raster of ``regions`` vertical stripes with distinct mean vectors plus noise (a stand-in for encoder
    features), written 16 rows at a time with the encoder's creation options for ``output_format``."""
    import rasterio
    from rasterio.transform import from_origin

    from engine.catalog import OUTPUT_FORMATS

    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (bands, regions)).astype(np.float32)
    labels = np.minimum(np.arange(size) * regions // size, regions - 1)
    base = centres[:, labels]  # (bands, size)
    rows = 16
    noise = rng.normal(0, 0.3, (bands, rows, size + 257)).astype(np.float32)  # reused with shifts: fast to make
    profile = dict(OUTPUT_FORMATS[output_format].options, width=size, height=size, count=bands, dtype="float32",
                   crs="EPSG:32633", transform=from_origin(500000, 4000000, 10, 10), nodata=float("nan"))
    with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"), rasterio.open(path, "w", **profile) as dst:
        for row in range(0, size, rows):
            h = min(rows, size - row)
            shift = (row * 7) % 257
            block = base[:, None, :] + noise[:, :h, shift:shift + size]
            dst.write(block, window=rasterio.windows.Window(0, row, size, h))


def fit_seconds(events: list[dict]) -> float:
    done = [e["message"] for e in events if e["type"] == "text" and ": done in " in e.get("message", "")]
    return float(done[-1].split(": done in ")[1].split(" s")[0]) if done else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="*", default=[2000, 4000])
    parser.add_argument("--bands", type=int, default=384)
    parser.add_argument("--manifold-size", type=int, default=400,
                        help="raster size for UMAP and HDBSCAN (0 skips them)")
    parser.add_argument("--manifold-bands", type=int, nargs="+", default=[384, 16],
                        help="band counts for UMAP and HDBSCAN: the raw features, and after a PCA")
    parser.add_argument("--work", default=None, help="folder for the generated rasters (default: a temp folder)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="iamap-bench-", dir=args.work))
    print(f"{args.bands}-band float32 rasters, uncompressed, in {work}; default SAMPLE_SIZE (100000)")
    try:
        for size in args.sizes:
            raster = work / f"f{size}.tif"
            make_feature_raster(raster, size, args.bands)
            gib = raster.stat().st_size / 2**30
            for tool, method in (("reduction", "PCA"), ("cluster", "KMeans")):
                outputs, events, wall, peak = run_tool(tool, {"INPUT": str(raster), "METHOD": method,
                                                              "OUTPUT": str(work / f"{method}{size}.tif")})
                print(f"{size}x{size} ({gib:.1f} GiB) {method}: wall {wall:.1f} s (fit {fit_seconds(events):.1f} s), "
                      f"peak RSS {peak:.0f} MiB", flush=True)
            raster.unlink()
        for bands in args.manifold_bands if args.manifold_size else []:
            size = args.manifold_size
            raster = work / f"m{size}_{bands}.tif"
            make_feature_raster(raster, size, bands)
            for tool, method in (("reduction", "UMAP"), ("cluster", "HDBSCAN")):
                outputs, events, wall, peak = run_tool(tool, {"INPUT": str(raster), "METHOD": method,
                                                              "OUTPUT": str(work / f"{method}.tif")})
                fitted = [e["message"] for e in events if e.get("message", "").startswith("Sample: ")][0]
                fit = fit_seconds(events)
                print(f"{size}x{size}, {bands} bands, {method}: {fitted.split(',')[0]}; fit {fit:.1f} s; "
                      f"sampling + labelling {size * size} pixels {wall - fit:.1f} s = "
                      f"{size * size / (wall - fit):.0f} pixels/s; peak RSS {peak:.0f} MiB", flush=True)
            raster.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
