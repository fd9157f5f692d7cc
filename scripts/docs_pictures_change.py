"""Make the tutorial's change picture (docs/pictures/change.png) from the bundled sample, with the engine's tools.

    ~/.local/share/iamap/worker-env/bin/python scripts/docs_pictures_change.py [--work DIR]

A second date of docs/sample/sample_rgb.tif is made by clearing a patch of forest (bare ground pasted in); the
change tool encodes both dates itself (ENCODE, the encoder settings of the other pictures: SIZE 112, STRIDE 56,
cosine merge, random weights) and writes the change, its mask (Otsu's threshold) and the polygons of the changed
areas. The picture shows both dates, the change and the polygons over the second date, with the IoU of the mask
against the patch. About a minute on two CPU cores; deterministic.
"""

from __future__ import annotations

import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

from docs_pictures import RANDOM_WEIGHTS, SAMPLE, main, panel, read, run, save  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import rasterio  # noqa: E402

#: The cleared patch (rows, columns of the sample): inside the forest block at the top left.
CLEARED = (slice(16, 112), slice(16, 112))
#: Where the bare ground is taken from (the bottom-right block of the sample).
BARE = (slice(336, 432), slice(336, 432))


def second_date(work: Path) -> Path:
    """The sample with a patch of forest cleared to bare ground."""
    with rasterio.open(SAMPLE) as src:
        data, profile = src.read(), src.profile
    data[:, CLEARED[0], CLEARED[1]] = data[:, BARE[0], BARE[1]]
    path = work / "sample_later.tif"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


def make_picture(work: Path) -> None:
    import geopandas

    later = second_date(work)
    outputs = run("change", INPUT=str(SAMPLE), LATER=[str(later)], ENCODE=True, PRETRAINED=False, SIZE=112,
                  STRIDE=56, MERGE_METHOD="cosine", DEVICE="cpu", OUTPUT=str(work / "change.tif"),
                  OUTPUT_MASK=str(work / "mask.tif"), OUTPUT_POLYGONS=str(work / "changed_areas.gpkg"))
    change, extent = read(Path(outputs["OUTPUT"]))
    mask, _ = read(Path(outputs["OUTPUT_MASK"]))
    with rasterio.open(outputs["OUTPUT_MASK"]) as src:
        rows, cols = np.mgrid[:src.height, :src.width]
        xs, ys = src.transform * (cols + 0.5, rows + 0.5)
    with rasterio.open(SAMPLE) as src:
        row, col = (np.asarray(a) for a in rasterio.transform.rowcol(src.transform, xs.ravel(), ys.ravel()))
    inside = np.zeros((512, 512), bool)
    inside[CLEARED] = True
    truth = inside[np.clip(row, 0, 511), np.clip(col, 0, 511)].reshape(mask[0].shape)
    found = mask[0] == 1
    iou = (found & truth).sum() / max((found | truth).sum(), 1)
    polygons = geopandas.read_file(outputs["OUTPUT_POLYGONS"])
    first_image, scene_extent = read(SAMPLE)
    later_image, _ = read(later)
    figure, axes = plt.subplots(1, 4, figsize=(16, 4.3))
    axes[0].imshow(first_image.transpose(1, 2, 0), extent=scene_extent)
    panel(axes[0], "First date (the sample)")
    axes[1].imshow(later_image.transpose(1, 2, 0), extent=scene_extent)
    panel(axes[1], "Later date: a patch of forest cleared")
    shown = axes[2].imshow(np.ma.masked_invalid(change[0]), cmap="magma", vmin=0,
                           vmax=min(2, 2 * outputs["THRESHOLD_USED"]), extent=extent, interpolation="nearest")
    figure.colorbar(shown, ax=axes[2], fraction=0.046, pad=0.02, label="change (1 - cosine similarity)")
    axes[2].set_xlim(scene_extent[:2])
    axes[2].set_ylim(scene_extent[2:])
    panel(axes[2], "iamap:change OUTPUT")
    axes[3].imshow(later_image.transpose(1, 2, 0), extent=scene_extent)
    polygons.boundary.plot(ax=axes[3], color="#ff00ff", linewidth=1.6)
    axes[3].set_xlim(scene_extent[:2])
    axes[3].set_ylim(scene_extent[2:])
    axes[3].set_xlabel("")
    axes[3].set_ylabel("")
    panel(axes[3], f"OUTPUT_POLYGONS: {len(polygons)} polygon(s), {outputs['CHANGED_AREA'] / 1e4:.2f} ha")
    figure.subplots_adjust(left=0.005, right=0.995, top=0.92, bottom=0.09, wspace=0.16)
    save(figure, "change.png", f"Otsu threshold {outputs['THRESHOLD_USED']:.3f}; mask IoU {iou:.2f} with the "
                               f"cleared patch; encoder SIZE 112, STRIDE 56 (cosine merge); {RANDOM_WEIGHTS}.")


if __name__ == "__main__":
    sys.exit(main(make=make_picture, description=__doc__.splitlines()[0]))
