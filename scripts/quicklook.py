"""Quick-look PNGs of IAMAP outputs beside the raster they were computed from (run with the worker environment's
python, which has matplotlib; scripts/demo.sh runs it on its outputs).

    python scripts/quicklook.py classes CLASSES.tif OUT.png [--rgb SCENE.tif]
    python scripts/quicklook.py similarity SIMILARITY.tif OUT.png [--rgb SCENE.tif] [--points POINTS.geojson]

A class map is drawn with the colours and names of the paletted style QGIS shows (the ``.qml`` the tool wrote
beside it), a similarity map with a colour bar from its lowest to its highest value, and the scene, when given, on
the left at the same extent.
"""

from __future__ import annotations

import argparse
import json
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import rasterio
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from engine.class_colours import class_colours


def read_band(path: Path) -> tuple[np.ma.MaskedArray, list[float]]:
    """Band 1 with nodata masked, and its extent as matplotlib takes it (left, right, bottom, top)."""
    with rasterio.open(path) as src:
        band = src.read(1, masked=True)
        if np.issubdtype(band.dtype, np.floating):
            band = np.ma.masked_invalid(band)
        bounds = src.bounds
    return band, [bounds.left, bounds.right, bounds.bottom, bounds.top]


def palette(classes: Path, codes: list[int]) -> list[tuple[int, str, str]]:
    """(code, colour, name) of each class: from the style QGIS uses (``<name>.qml``), else from the file (its
    class names and colour table), else the colours :mod:`engine.class_colours` gives the names."""
    qml = classes.with_suffix(".qml")
    if qml.exists():
        entries = [(int(float(e.get("value"))), e.get("color"), e.get("label") or e.get("value"))
                   for e in ElementTree.parse(qml).iter("paletteEntry")]
        if {code for code, _, _ in entries} >= set(codes):
            return [entry for entry in entries if entry[0] in codes]
    with rasterio.open(classes) as src:  # no style: the names the ml tool tagged and the file's colour table
        names = json.loads(src.tags().get("CLASSES", "{}"))
        try:
            table = src.colormap(1)
        except ValueError:  # no colour table (int16 and int32 classes)
            table = {}
    named = [names.get(str(code), f"class {code}") for code in codes]
    colours = class_colours(named)  # the colours the ml tool gives these names (engine.class_colours)
    return [(code, "#{:02x}{:02x}{:02x}".format(*table[code][:3]) if code in table else colour, name)
            for code, name, colour in zip(codes, named, colours)]


def scene_panel(axis, rgb: Path | None, extent: list[float]) -> None:
    """The scene as RGB: its first three bands stretched together from their 1 % to their 99 % value (one range
    for the three keeps the colours' balance)."""
    with rasterio.open(rgb) as src:
        data = src.read(list(range(1, min(src.count, 3) + 1)), masked=True).astype(np.float32)
        bounds = src.bounds
    if data.shape[0] < 3:
        data = np.ma.concatenate([data] + [data[:1]] * (3 - data.shape[0]))
    low, high = np.percentile(data.compressed(), [1, 99]) if data.count() else (0, 1)
    stretched = np.clip((data.filled(low) - low) / max(high - low, 1e-6), 0, 1)
    axis.imshow(np.dstack(stretched), extent=[bounds.left, bounds.right, bounds.bottom, bounds.top])
    axis.set_title(f"{rgb.name}")
    axis.set_xlim(extent[:2])
    axis.set_ylim(extent[2:])


def figure(rgb: Path | None):
    columns = 2 if rgb else 1
    fig, axes = plt.subplots(1, columns, figsize=(6 * columns, 5.4), squeeze=False, constrained_layout=True)
    for axis in axes[0]:
        axis.set_xticks([])
        axis.set_yticks([])
    return fig, axes[0]


def classes_png(classes: Path, out: Path, rgb: Path | None = None) -> Path:
    band, extent = read_band(classes)
    codes = sorted(int(code) for code in np.unique(band.compressed()))
    entries = palette(classes, codes)
    fig, axes = figure(rgb)
    if rgb:
        scene_panel(axes[0], rgb, extent)
    index = np.ma.masked_array(np.searchsorted(codes, band.filled(codes[0])), band.mask)
    axes[-1].imshow(index, cmap=ListedColormap([colour for _, colour, _ in entries]), vmin=-0.5,
                    vmax=len(codes) - 0.5, extent=extent, interpolation="nearest")
    counts = {code: int((band == code).sum()) for code in codes}
    total = max(sum(counts.values()), 1)
    axes[-1].legend(handles=[Patch(color=colour, label=f"{name} ({100 * counts[code] / total:.0f} %)")
                             for code, colour, name in entries],
                    loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    axes[-1].set_title(classes.name)
    return save(fig, out)


def similarity_png(similarity: Path, out: Path, rgb: Path | None = None, points: Path | None = None) -> Path:
    band, extent = read_band(similarity)
    fig, axes = figure(rgb)
    if rgb:
        scene_panel(axes[0], rgb, extent)
    image = axes[-1].imshow(band, cmap="viridis", extent=extent, interpolation="nearest")
    fig.colorbar(image, ax=axes[-1], shrink=0.8, label="cosine similarity")
    if points:
        xy = np.array([f["geometry"]["coordinates"][:2] for f in json.loads(points.read_text())["features"]
                       if f["geometry"] and f["geometry"]["type"] == "Point"])
        if len(xy):
            for axis in axes:
                axis.scatter(xy[:, 0], xy[:, 1], s=28, c="#ff3b30", edgecolors="white", linewidths=0.8,
                             label="reference points")
            axes[-1].legend(loc="lower right", fontsize="small")
    axes[-1].set_title(similarity.name)
    return save(fig, out)


def save(fig, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=("classes", "similarity"))
    parser.add_argument("raster", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--rgb", type=Path, help="the scene, drawn on the left")
    parser.add_argument("--points", type=Path, help="reference points (GeoJSON, the raster's CRS) to mark")
    args = parser.parse_args(argv)
    if args.kind == "classes":
        print(classes_png(args.raster, args.png, args.rgb))
    else:
        print(similarity_png(args.raster, args.png, args.rgb, args.points))
    return 0


if __name__ == "__main__":
    sys.exit(main())
