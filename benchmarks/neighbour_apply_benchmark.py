"""UMAP and HDBSCAN application benchmark: pixels per second of the libraries' own per-pixel paths (umap-learn's
``transform``, ``hdbscan.approximate_predict``) and of IAMAP's vectorised appliers
(:mod:`engine.neighbour_apply`), in one process, on the same fitted models and pixels, with their agreement.
Prints numbers; asserts nothing.

    <worker python> benchmarks/neighbour_apply_benchmark.py [--sample 20000] [--pixels 100000]
        [--library-pixels 10000] [--data scene,generated] [--bands 16,384] [--methods HDBSCAN,UMAP]
        [--repeat 3]

Data: ``scene`` is the bundled Sentinel-2-like scene (``../shared/data/iamap-assets/test.tif``, 11 bands, its
valid pixels); ``generated`` is, for each of ``--bands`` (16: PCA-reduced features; 384: a ViT-S encoder's), that
many features of 8 Gaussian clusters with noise. Each model is fitted as the tools fit it
(:func:`engine.fitting.fit_model`, IAMAP's defaults, seed 0) on ``--sample`` pixels and applied to ``--pixels``
others, the libraries' paths to the first ``--library-pixels`` of them (hours otherwise on 384 bands); each path
runs once on 1000 pixels first (numba compiles, the sample's index is made), then both are timed ``--repeat``
times in turn: the speed-up printed is the median of those pairs' ratios, the pixels/s the medians of each path.
Agreement is measured on the pixels both paths mapped.

Agreement: HDBSCAN, the adjusted Rand index of the labels against approximate_predict's, and the share of equal
labels. UMAP, against umap's transform of the same pixels: neighbourhood preservation (the share of each pixel's
10 nearest pixels in one embedding that are also its 10 nearest in the other), next to the same figure for
umap's transform against itself with another ``transform_seed`` (how much the library agrees with itself), and
the trustworthiness (scikit-learn, 10 neighbours, 5000 pixels) of each embedding of the scaled pixels.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine.events import NULL_REPORTER  # noqa: E402
from engine.fitting import apply_model, fit_model  # noqa: E402

SCENE = REPO.parent / "shared" / "data" / "iamap-assets" / "test.tif"


def scene_pixels() -> np.ndarray:
    import rasterio

    with rasterio.open(SCENE) as src:
        data = src.read().reshape(src.count, -1).T.astype(np.float32)
        return data[~(data == src.nodata).any(axis=1)]


def generated_pixels(count: int, bands: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (8, bands))
    return (centres[rng.integers(0, 8, count)] + rng.normal(0, 1, (count, bands))).astype(np.float32)


def timed(function, values: np.ndarray) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    output = function(values)
    return output, len(values) / (time.perf_counter() - start)


def alternated(library, fast, library_values: np.ndarray, values: np.ndarray, repeat: int) -> tuple:
    """Both paths timed ``repeat`` times in turn (a shared machine's speed drifts within seconds: each pair sees
    the same moment), after a first call each on 1000 pixels (numba compiles, the sample's index is made).
    Returns both outputs, the median pixels/s of each, and the median of the pairs' ratios."""
    library(library_values[:1000]), fast(values[:1000])
    befores, afters = [], []
    for _ in range(repeat):
        reference, before = timed(library, library_values)
        output, after = timed(fast, values)
        befores.append(before)
        afters.append(after)
    ratios = [a / b for a, b in zip(afters, befores)]
    return reference, output, float(np.median(befores)), float(np.median(afters)), float(np.median(ratios))


def neighbourhood_preservation(first: np.ndarray, second: np.ndarray, k: int = 10) -> float:
    from sklearn.neighbors import NearestNeighbors

    def neighbours(points):
        return NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points, return_distance=False)[:, 1:]

    a, b = neighbours(first), neighbours(second)
    return float(np.mean([len(np.intersect1d(p, q)) / k for p, q in zip(a, b)]))


def compare(name: str, values: np.ndarray, sample: int, pixels: int, library_pixels: int,
            methods: tuple[str, ...] = ("HDBSCAN", "UMAP"), repeat: int = 3) -> None:
    from sklearn.manifold import trustworthiness
    from sklearn.metrics import adjusted_rand_score

    rng = np.random.default_rng(1)
    order = rng.permutation(len(values))
    fit, new = values[order[:sample]], values[order[sample:sample + pixels]]
    for method, tool, size in (("HDBSCAN", "cluster", 8), ("UMAP", "reduction", 3)):
        if method not in methods:
            continue
        start = time.perf_counter()
        model, _ = fit_model(tool, method, {}, size, 0, fit, NULL_REPORTER)
        fitted = time.perf_counter() - start
        reference, fast, before, after, ratio = alternated(lambda v, m=model: apply_model(m, v, library=True),
                                                           lambda v, m=model: apply_model(m, v, library=False),
                                                           new[:library_pixels], new, repeat)
        fast = fast[:len(reference)]
        line = (f"{name:9s} {method:7s} {new.shape[1]:3d} bands, fit on {len(fit)} px ({fitted:.0f} s), applied to "
                f"{len(new)} px: library {before:9,.0f} px/s | IAMAP {after:9,.0f} px/s | {ratio:5.1f} x | ")
        if method == "HDBSCAN":
            line += (f"ARI {adjusted_rand_score(reference, fast):.4f}, equal labels {np.mean(reference == fast):.4f}, "
                     f"{len(np.unique(reference[reference >= 0]))} clusters")
        else:
            estimator = model["pipeline"][-1]
            estimator.transform_seed = 1
            again = apply_model(model, new[:library_pixels], library=True)
            few = slice(0, 5000)
            scaled = model["pipeline"][0].transform(new[few])
            line += (f"neighbourhood preservation vs umap {neighbourhood_preservation(fast, reference):.3f} (umap vs "
                     f"itself, another seed: {neighbourhood_preservation(again, reference):.3f}) | trustworthiness "
                     f"umap {trustworthiness(scaled, reference[few], n_neighbors=10):.4f}, IAMAP "
                     f"{trustworthiness(scaled, fast[few], n_neighbors=10):.4f}")
        print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", type=int, default=20_000, help="pixels the models are fitted on")
    parser.add_argument("--pixels", type=int, default=100_000, help="other pixels the models are applied to")
    parser.add_argument("--library-pixels", type=int, default=10_000, help="of those, the libraries' paths map")
    parser.add_argument("--data", default="scene,generated")
    parser.add_argument("--bands", default="16,384", help="bands of the generated data (comma-separated)")
    parser.add_argument("--methods", default="HDBSCAN,UMAP")
    parser.add_argument("--repeat", type=int, default=3, help="timings of each path, alternated (medians printed)")
    args = parser.parse_args()
    methods = tuple(args.methods.split(","))
    print(f"load average {Path('/proc/loadavg').read_text().strip()}; {os.cpu_count()} CPU(s)", flush=True)
    for name in args.data.split(","):
        if name == "scene":
            if not SCENE.exists():
                print(f"scene: {SCENE} is missing, skipped")
                continue
            compare(name, scene_pixels(), args.sample, args.pixels, args.library_pixels, methods, args.repeat)
            continue
        for bands in (int(b) for b in args.bands.split(",")):
            values = generated_pixels(args.sample + args.pixels, bands)
            compare(name, values, args.sample, args.pixels, args.library_pixels, methods, args.repeat)
    print(f"load average {Path('/proc/loadavg').read_text().strip()}")


if __name__ == "__main__":
    main()
