"""ml benchmark: fit, cross-validation and prediction time and peak RSS of iamap:ml (random forest, 500 labelled
points, 5-fold group CV) on generated 384-band float32 feature rasters of several sizes. Peak RSS must not grow
with the raster; the prediction's pixels per second are compared with the fitted model's own ``predict`` on
pixels already in memory (the ratio is what reading and writing cost). Prints numbers; asserts nothing.

    <worker python> benchmarks/ml_benchmark.py [--sizes 1024 4096] [--bands 384] [--points 500]

Rasters are written uncompressed (4096 x 4096 x 384 float32 is 24 GiB on disk) and deleted after. Each run is a
separate worker process, as in QGIS, measured alone.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.estimator_benchmark import make_feature_raster  # noqa: E402
from benchmarks.worker_process import run_tool  # noqa: E402

REGIONS = 6  # the stripes of make_feature_raster: the classes to learn


def labelled_points(raster: Path, path: Path, count: int, seed: int = 0) -> None:
    """``count`` random points of the raster labelled with their stripe ("stripe 0"...)."""
    import geopandas as gpd
    import rasterio

    rng = np.random.default_rng(seed)
    with rasterio.open(raster) as src:
        rows, cols = rng.integers(0, src.height, count), rng.integers(0, src.width, count)
        xs, ys = rasterio.transform.xy(src.transform, rows, cols)
        stripe = np.minimum(cols * REGIONS // src.width, REGIONS - 1)
    gpd.GeoDataFrame({"label": [f"stripe {k}" for k in stripe]}, geometry=gpd.points_from_xy(xs, ys),
                     crs="EPSG:32633").to_file(path)


def own_predict_rate(model_path: Path, bands: int, pixels: int = 200_000) -> float:
    """Pixels per second of the saved model's pipeline on pixels already in memory, measured in a process of its
    own: done here, the model and the pixels would stay in this process, and a worker forked from it would count
    them in its peak RSS."""
    script = f"""
import sys, time
import numpy as np
sys.path.insert(0, {str(REPO)!r})
from engine.model_files import load_model
model = load_model({str(model_path)!r}, "ml", {bands})
values = np.random.default_rng(1).normal(0, 1, ({pixels}, {bands})).astype(np.float32)
start = time.perf_counter()
model["pipeline"].predict(values)
print({pixels} / (time.perf_counter() - start))
"""
    return float(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                check=True).stdout.split()[-1])


def done_seconds(events: list[dict], prefix: str) -> float:
    """The seconds of the first "<prefix>...: done in X s" line of the log."""
    for event in events:
        message = event.get("message", "")
        if message.startswith(prefix) and ": done in " in message:
            return float(message.split(": done in ")[1].split(" s")[0])
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="*", default=[1024, 4096])
    parser.add_argument("--bands", type=int, default=384)
    parser.add_argument("--points", type=int, default=500)
    parser.add_argument("--work", default=None, help="folder for the generated rasters (default: a temp folder)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="iamap-ml-bench-", dir=args.work))
    print(f"{args.bands}-band float32 rasters, uncompressed, in {work}; RandomForestClassifier, {args.points} "
          f"labelled points, {REGIONS} classes, CV group (5 folds)")
    try:
        for size in args.sizes:
            raster, points = work / f"f{size}.tif", work / f"points{size}.gpkg"
            make_feature_raster(raster, size, args.bands, regions=REGIONS)
            labelled_points(raster, points, args.points)
            gib = raster.stat().st_size / 2**30
            model = work / f"rf{size}.iamapmodel"
            outputs, events, wall, peak = run_tool("ml", {
                "INPUT": str(raster), "TEMPLATE": str(points), "GT_COL": "label", "OUTPUT": str(work / f"c{size}.tif"),
                "SAVE_MODEL": str(model), "REPORT": str(work / f"r{size}.html")})
            fit, cv = done_seconds(events, "Fitting"), done_seconds(events, "Cross-validation:")
            predict = done_seconds(events, "Prediction of")
            rate = size * size / predict
            own = own_predict_rate(model, args.bands)
            print(f"{size}x{size} ({gib:.1f} GiB): fit {fit:.1f} s, CV {cv:.1f} s, predict {predict:.1f} s "
                  f"({rate:,.0f} pixels/s; the model's own predict in memory {own:,.0f} pixels/s, ratio "
                  f"{own / rate:.2f}), wall {wall:.1f} s, peak RSS {peak:.0f} MiB; accuracy {outputs['ACCURACY']:.3f}",
                  flush=True)
            raster.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
