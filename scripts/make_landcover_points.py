"""Make docs/sample/landcover_points.geojson, the labelled points the demo trains ``iamap:ml`` with (run with the
worker environment's python: ``~/.local/share/iamap/worker-env/bin/python scripts/make_landcover_points.py``).

The land cover is read from the sample's colours, as a person labelling it by eye would: each pixel goes to the
nearest of four reference colours after a local mean (the texture averaged out), and points are drawn only where
a whole window around them has that one class, so no point sits on a boundary. Ten points per class, drawn with a
fixed seed at least 40 m apart: the same file every time, in the sample's CRS.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio
from scipy import ndimage

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "docs" / "sample"
SAMPLE = SAMPLE_DIR / "sample_rgb.tif"
OUT = SAMPLE_DIR / "landcover_points.geojson"
#: What each class looks like in the sample (8-bit RGB).
REFERENCE_COLOURS = {"water": (40, 70, 120), "forest": (34, 80, 40), "cropland": (150, 170, 70),
                     "bare": (170, 140, 110)}
POINTS_PER_CLASS = 10
SMOOTHING = 7  # pixels of the mean that averages out the texture
MARGIN = 11  # side of the window that must be all one class around a point
MIN_SPACING = 4  # pixels between points


def landcover(rgb: np.ndarray) -> np.ndarray:
    """Index into REFERENCE_COLOURS of each pixel (bands, rows, cols) -> (rows, cols)."""
    smooth = np.stack([ndimage.uniform_filter(band.astype(np.float32), SMOOTHING) for band in rgb], axis=-1)
    references = np.array(list(REFERENCE_COLOURS.values()), np.float32)
    distances = np.linalg.norm(smooth[:, :, None, :] - references[None, None], axis=-1)
    return distances.argmin(axis=-1)


def pick_points(classes: np.ndarray, valid: np.ndarray, rng: np.random.Generator) -> list[tuple[int, int, int]]:
    """(row, col, class) of POINTS_PER_CLASS points per class, inside areas of one class, MIN_SPACING apart."""
    uniform = ndimage.maximum_filter(classes, MARGIN) == ndimage.minimum_filter(classes, MARGIN)
    edge = MARGIN // 2
    inside = np.zeros_like(valid)
    inside[edge:-edge, edge:-edge] = True
    picked: list[tuple[int, int, int]] = []
    for index in range(len(REFERENCE_COLOURS)):
        rows, cols = np.nonzero(uniform & valid & inside & (classes == index))
        if len(rows) < POINTS_PER_CLASS:
            raise SystemExit(f"only {len(rows)} candidate pixels for {list(REFERENCE_COLOURS)[index]}")
        chosen = 0
        for k in rng.permutation(len(rows)):
            row, col = int(rows[k]), int(cols[k])
            if all(max(abs(row - r), abs(col - c)) >= MIN_SPACING for r, c, _ in picked):
                picked.append((row, col, index))
                chosen += 1
                if chosen == POINTS_PER_CLASS:
                    break
    return picked


def main() -> None:
    with rasterio.open(SAMPLE) as src:
        rgb = src.read()
        valid = ~np.all(rgb == src.nodata, axis=0) if src.nodata is not None else np.ones(rgb.shape[1:], bool)
        transform, crs = src.transform, src.crs
    classes = landcover(rgb)
    names = list(REFERENCE_COLOURS)
    features = []
    for row, col, index in pick_points(classes, valid, np.random.default_rng(7)):
        x, y = transform * (col + 0.5, row + 0.5)
        features.append({"type": "Feature", "properties": {"landcover": names[index]},
                         "geometry": {"type": "Point", "coordinates": [round(x, 2), round(y, 2)]}})
    collection = {"type": "FeatureCollection", "name": "landcover_points",
                  "crs": {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{crs.to_epsg()}"}},
                  "features": features}
    OUT.write_text(json.dumps(collection, indent=1) + "\n")
    print(f"{OUT}: {len(features)} points, {POINTS_PER_CLASS} per class ({', '.join(names)})")


if __name__ == "__main__":
    main()
