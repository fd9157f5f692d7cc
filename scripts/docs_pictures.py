"""Make the documentation's pictures (docs/pictures/*.png) from the bundled sample, with the engine's own tools.

    ~/.local/share/iamap/worker-env/bin/python scripts/docs_pictures.py [--work DIR]

Runs the tools exactly as the worker does (:func:`engine.worker.run_tool`, the parameters of the contract) on
docs/sample/sample_rgb.tif: the encoder with and without overlapping tiles and at two tile sizes, PCA, KMeans,
similarity to docs/sample/river_points.geojson, and ml trained on points labelled here from the sample's colours.
The encoder runs with random weights (PRETRAINED false): no weights can be downloaded where the pictures are made,
and the captions say so. Random weights still keep colour and texture and show the tile seams well, but
pretrained weights give much cleaner features. About a minute on two CPU cores; deterministic.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import rasterio  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from engine import catalog  # noqa: E402
from engine.class_colours import class_colours as named_class_colours  # noqa: E402
from engine.tiling import TileGrid  # noqa: E402
from engine.events import Reporter  # noqa: E402
from engine.worker import run_tool  # noqa: E402

SAMPLE = REPO / "docs" / "sample" / "sample_rgb.tif"
RIVER_POINTS = REPO / "docs" / "sample" / "river_points.geojson"
PICTURES = REPO / "docs" / "pictures"
RANDOM_WEIGHTS = "random encoder weights (PRETRAINED false)"

#: The land covers make_sample.py paints, with the colour it paints them (red, green, blue before texture):
#: the labels of the ml picture's training points are read back from these colours.
LAND_COVERS = {"forest": (34, 80, 40), "fields": (150, 170, 70), "bare ground": (170, 140, 110),
               "river": (40, 70, 120)}
POINTS_PER_CLASS = 12


def run(tool: str, **params) -> dict:
    """One tool through the worker's own entry point; its outputs, or SystemExit with its error."""
    reporter = Reporter()
    started = time.monotonic()
    if run_tool(tool, {key: value for key, value in params.items()}, reporter) != 0:
        raise SystemExit(f"{tool} failed: {reporter.events[-1].get('message')}")
    print(f"  {tool} {Path(str(params.get('OUTPUT', ''))).name}: {time.monotonic() - started:.1f} s", flush=True)
    return next(e["outputs"] for e in reporter.events if e["type"] == "result")


def encode(work: Path, name: str, **params) -> Path:
    output = work / f"{name}.tif"
    run("encoder", INPUT=str(SAMPLE), PRETRAINED=False, PRECISION="fp32", DEVICE="cpu", BATCH_SIZE=16,
        RESUME=False, OUTPUT=str(output), **params)
    return output


def position_dependent_checkpoint(work: Path, strength: float = 1.0) -> Path:
    """The default backbone's random weights with smooth, strong position embeddings, as a CKPT file.

    Random weights make features that hardly depend on where a patch sits in its tile, so tiles join without
    seams; pretrained features do depend on it (position embeddings, and the context a border patch lacks), which
    is what makes seams. Smooth position embeddings (low-frequency waves over the patch grid) give random weights
    that dependence, so the pictures show what STRIDE and MERGE_METHOD do about it."""
    import timm
    import torch
    from safetensors.torch import save_file

    entry = catalog.backbone(catalog.BACKBONE_KEYS[0])
    torch.manual_seed(0)
    model = timm.create_model(entry.timm_name, pretrained=False, num_classes=0, img_size=entry.img_size)
    state = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    cells, dim = state["pos_embed"].shape[1:]
    side = int(round(cells ** 0.5))
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[0:side, 0:side] / side
    freq_y, freq_x = rng.uniform(-0.5, 0.5, dim), rng.uniform(-0.5, 0.5, dim)
    phase = rng.uniform(0, 2 * np.pi, dim)
    waves = np.sin(2 * np.pi * (rows[..., None] * freq_y + cols[..., None] * freq_x) + phase)
    state["pos_embed"] = torch.tensor(strength * waves.reshape(1, cells, dim), dtype=state["pos_embed"].dtype)
    path = work / "position_dependent.safetensors"
    save_file(state, str(path))
    return path


def neighbour_change(features: np.ndarray) -> np.ndarray:
    """1 - cosine similarity of each output pixel to its right and lower neighbours (the larger): land-cover
    borders and seams both show as lines."""
    unit = features / np.linalg.norm(features, axis=0, keepdims=True)
    change = np.zeros(features.shape[1:])
    change[:, :-1] = 1 - (unit[:, :, 1:] * unit[:, :, :-1]).sum(axis=0)
    change[:-1, :] = np.fmax(change[:-1, :], 1 - (unit[:, 1:, :] * unit[:, :-1, :]).sum(axis=0))
    return change


def read(path: Path) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The bands of ``path`` and its extent as matplotlib wants it (left, right, bottom, top)."""
    with rasterio.open(path) as src:
        bounds = src.bounds
        return src.read(masked=False), (bounds.left, bounds.right, bounds.bottom, bounds.top)


def stretch(bands: np.ndarray) -> np.ndarray:
    """(3, h, w) to an (h, w, 3) image in [0, 1], each band stretched between its 2nd and 98th percentiles."""
    image = np.moveaxis(bands[:3].astype(np.float64), 0, -1)
    low, high = np.nanpercentile(image, 2, axis=(0, 1)), np.nanpercentile(image, 98, axis=(0, 1))
    return np.clip((image - low) / np.where(high > low, high - low, 1), 0, 1)


def principal_components(features: Path) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The first 3 principal components of a feature raster (iamap:reduction, PCA), with their extent."""
    output = features.with_name(f"{features.stem}_pca.tif")
    run("reduction", INPUT=str(features), METHOD="PCA", N_COMPONENTS=3, OUTPUT=str(output))
    return read(output)


def class_colours(count: int) -> ListedColormap:
    return ListedColormap([catalog.class_colour(i) for i in range(count)])


def panel(axis, title: str) -> None:
    axis.set_title(title, fontsize=10)
    axis.set_xticks([])
    axis.set_yticks([])


def save(figure, name: str, caption: str) -> None:
    figure.text(0.5, 0.01, caption, ha="center", va="bottom", fontsize=8, color="#444444")
    figure.savefig(PICTURES / name, dpi=90)
    plt.close(figure)
    print(f"{PICTURES / name}", flush=True)


def training_points(work: Path) -> Path:
    """Labelled points drawn from the sample's colours: pixels whose 5 x 5 mean colour is close to the colour of
    one land cover, POINTS_PER_CLASS of each, seeded. A GeoPackage with the field ``class``."""
    import geopandas
    from scipy.ndimage import uniform_filter
    from shapely.geometry import Point

    with rasterio.open(SAMPLE) as src:
        rgb = src.read().astype(np.float32)
        transform, crs = src.transform, src.crs
    smooth = np.stack([uniform_filter(band, 5) for band in rgb], axis=-1)
    colours = np.array(list(LAND_COVERS.values()), np.float32)
    distance = np.linalg.norm(smooth[:, :, None, :] - colours[None, None], axis=-1)
    nearest, closest = distance.argmin(axis=-1), distance.min(axis=-1)
    rng = np.random.default_rng(7)
    rows, names = [], []
    for index, name in enumerate(LAND_COVERS):
        candidates = np.argwhere((nearest == index) & (closest < 15))
        for row, col in candidates[rng.choice(len(candidates), POINTS_PER_CLASS, replace=False)]:
            rows.append(Point(*(transform * (col + 0.5, row + 0.5))))
            names.append(name)
    path = work / "training_points.gpkg"
    geopandas.GeoDataFrame({"class": names}, geometry=rows, crs=crs.to_wkt()).to_file(path, driver="GPKG")
    return path


def main(argv: list[str] | None = None, make=None, description: str = "") -> int:
    """Make the pictures with ``make(work folder)`` (default: :func:`make_pictures`), in ``--work`` or a temporary
    folder."""
    make = make or make_pictures
    parser = argparse.ArgumentParser(description=description or __doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, help="keep the intermediate rasters in this folder")
    args = parser.parse_args(argv)
    PICTURES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="iamap-docs-") as temporary:
        work = args.work or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        make(work)
    return 0


def grid_edge_picture(pixels: int = 512, resolution: float = 10.0) -> None:
    """The feature grid over the input's bottom-right corner: a whole number of input pixels per cell from the
    input's origin, the last row and column hanging over the edge and computed from their part inside."""
    from matplotlib.patches import Rectangle

    default = catalog.backbone(catalog.BACKBONE_KEYS[0])
    cells = default.input_size // default.patch
    grid = TileGrid.create(pixels, pixels, 224, 224, cells, cells)
    cell = grid.cell_w * resolution
    size, covered = pixels * resolution, grid.out_width * grid.cell_w * resolution
    figure, axes = plt.subplots(1, 2, figsize=(11, 5.2))
    for axis, (low, title) in zip(axes, ((0, f"{pixels} x {pixels} px input, {resolution:g} m pixels: "
                                               f"{grid.out_width} x {grid.out_height} cells of {cell:g} m"),
                                         (size - 3.5 * cell, "its bottom-right corner"))):
        axis.add_patch(Rectangle((0, 0), size, size, facecolor="#cfe3c8", edgecolor="#2b6e2b", linewidth=2,
                                 label=f"input: {size:g} m"))
        for index in range(grid.out_width):
            for row in range(grid.out_height):
                x, y = index * cell, size - (row + 1) * cell
                partial = index == grid.out_width - 1 or row == grid.out_height - 1
                axis.add_patch(Rectangle((x, y), cell, cell, fill=partial, facecolor="#f6c46a" if partial else "none",
                                         alpha=0.55 if partial else 1, edgecolor="#555555", linewidth=0.4))
        axis.add_patch(Rectangle((0, 0), size, size, fill=False, edgecolor="#2b6e2b", linewidth=2, zorder=3))
        axis.set_xlim(low - cell * 0.2, covered + cell * 0.3)
        axis.set_ylim(size - covered - cell * 0.3, size - low + cell * 0.2)
        axis.set_aspect("equal")
        panel(axis, title)
    axes[1].annotate(f"{covered - size:g} m past the input", xy=(size, size - covered + cell / 2),
                     xytext=(size - 2.8 * cell, size - covered - 0.15 * cell), fontsize=9,
                     arrowprops={"arrowstyle": "->"})
    axes[0].legend(handles=[Patch(facecolor="#cfe3c8", edgecolor="#2b6e2b", label=f"input ({size:g} m)"),
                            Patch(facecolor="#f6c46a", alpha=0.55, label="edge cells, computed from their part "
                                                                         "inside the input")],
                   loc="lower left", fontsize=8, framealpha=0.9)
    figure.subplots_adjust(left=0.01, right=0.99, top=0.92, bottom=0.08, wspace=0.05)
    save(figure, "grid_edge.png", f"The feature grid ({covered:g} m) keeps the input's origin and whole "
                                  f"{grid.cell_w:g}-pixel cells, so it ends up to one cell past the input "
                                  f"({size:g} m); default model, SIZE 224.")


def make_pictures(work: Path) -> None:
    started = time.monotonic()
    grid_edge_picture()
    scene, scene_extent = read(SAMPLE)
    scene_image = scene.transpose(1, 2, 0)

    # encoder: DINOv2 ViT-S/14 makes 16 x 16 cells per tile, so SIZE 112 gives one output pixel per 7 input pixels
    print("encoder", flush=True)
    features = encode(work, "features_112_s56_cosine", SIZE=112, STRIDE=56, MERGE_METHOD="cosine")
    coarse = encode(work, "features_224_s112_cosine", SIZE=224, STRIDE=112, MERGE_METHOD="cosine")
    checkpoint = position_dependent_checkpoint(work)
    seam_runs = (("SIZE 112, no overlap (STRIDE empty)", {}),
                 ("STRIDE 56, MERGE_METHOD average", {"STRIDE": 56, "MERGE_METHOD": "average"}),
                 ("STRIDE 56, MERGE_METHOD cosine", {"STRIDE": 56, "MERGE_METHOD": "cosine"}))
    figure, axes = plt.subplots(2, 3, figsize=(12, 8.4))
    for column, (title, params) in enumerate(seam_runs):
        path = encode(work, f"seams_{column}", SIZE=112, CKPT=str(checkpoint), **params)
        components, extent = principal_components(path)
        axes[0, column].imshow(stretch(components), extent=extent, interpolation="nearest")
        panel(axes[0, column], title)
        bands, extent = read(path)
        axes[1, column].imshow(neighbour_change(bands), cmap="gray_r", vmin=0, vmax=0.5, extent=extent,
                               interpolation="nearest")
        panel(axes[1, column], "change to the next pixel (1 - cosine)")
    figure.subplots_adjust(left=0.01, right=0.99, top=0.96, bottom=0.05, wspace=0.03, hspace=0.08)
    save(figure, "seams.png", "Top: first 3 principal components as RGB; bottom: dark = features change between "
                              "neighbouring pixels. Random weights with smooth position embeddings (PRETRAINED false, "
                              "CKPT made by the script)\nstand in for pretrained features, which depend on where a "
                              "patch "
                              "sits in its tile. Without overlap a seam every 112 px; average halves it; cosine "
                              "removes it.")

    figure, axes = plt.subplots(1, 3, figsize=(12, 4.6))
    axes[0].imshow(scene_image, extent=scene_extent)
    panel(axes[0], "Input: 512 x 512 px at 10 m")
    for axis, (path, title) in zip(axes[1:], ((coarse, "SIZE 224: one output pixel = 14 input pixels"),
                                              (features, "SIZE 112: one output pixel = 7 input pixels"))):
        components, extent = principal_components(path)
        axis.imshow(stretch(components), extent=extent, interpolation="nearest")
        panel(axis, f"{title} ({components.shape[2]} x {components.shape[1]})")
    figure.subplots_adjust(left=0.01, right=0.99, top=0.93, bottom=0.08, wspace=0.03)
    save(figure, "resolution.png", f"Features (first 3 principal components) at two tile sizes, both with half-tile "
                                   f"stride and cosine merge; {RANDOM_WEIGHTS}.")

    print("reduction, cluster, similarity, ml", flush=True)
    pca = run("reduction", INPUT=str(features), METHOD="PCA", N_COMPONENTS=3, OUTPUT=str(work / "pca.tif"))
    clusters = run("cluster", INPUT=str(features), METHOD="KMeans", N_CLUSTERS=4, OUTPUT=str(work / "clusters.tif"))
    similarity = run("similarity", INPUT=str(features), TEMPLATE=str(RIVER_POINTS), DEVICE="cpu",
                     OUTPUT=str(work / "similarity.tif"), OUTPUT_POINTS=str(work / "river_points_used.gpkg"))
    points = training_points(work)
    ml = run("ml", INPUT=str(features), TEMPLATE=str(points), GT_COL="class", CV="group", NFOLDS=4,
             OUTPUT=str(work / "classes.tif"), OUTPUT_CONFIDENCE=str(work / "confidence.tif"),
             REPORT=str(work / "report.html"))

    pca_bands, pca_extent = read(Path(pca["OUTPUT"]))
    labels, cluster_extent = read(Path(clusters["OUTPUT"]))
    labels = np.ma.masked_less(labels[0], 0)
    similar, similar_extent = read(Path(similarity["OUTPUT"]))
    river = json.loads(RIVER_POINTS.read_text())["features"]
    river_xy = np.array([feature["geometry"]["coordinates"] for feature in river])

    figure, axes = plt.subplots(1, 4, figsize=(14, 3.9))
    axes[0].imshow(scene_image, extent=scene_extent)
    panel(axes[0], "Sample scene")
    axes[1].imshow(stretch(pca_bands), extent=pca_extent, interpolation="nearest")
    panel(axes[1], "Features, PCA as RGB")
    axes[2].imshow(labels, cmap=class_colours(4), vmin=-0.5, vmax=3.5, extent=cluster_extent, interpolation="nearest")
    panel(axes[2], "KMeans, 4 clusters")
    axes[3].imshow(similar[0], cmap="magma", vmin=-1, vmax=1, extent=similar_extent, interpolation="nearest")
    axes[3].scatter(river_xy[:, 0], river_xy[:, 1], s=14, c="#00e5ff", edgecolors="black", linewidths=0.5)
    panel(axes[3], "Similarity to the river points")
    figure.subplots_adjust(left=0.005, right=0.995, top=0.92, bottom=0.09, wspace=0.03)
    save(figure, "overview.png", f"encoder (SIZE 112, STRIDE 56, cosine merge) -> reduction / cluster / "
                                 f"similarity on docs/sample/sample_rgb.tif; {RANDOM_WEIGHTS}.")

    figure, axes = plt.subplots(1, 2, figsize=(9.5, 4.9))
    axes[0].imshow(scene_image, extent=scene_extent)
    panel(axes[0], "Sample scene")
    axes[1].imshow(stretch(pca_bands), extent=pca_extent, interpolation="nearest")
    variance = ", ".join(f"{v:.0%}" for v in pca["EXPLAINED_VARIANCE"])
    panel(axes[1], f"iamap:reduction PCA, 3 components as RGB ({variance} of the variance)")
    figure.subplots_adjust(left=0.01, right=0.99, top=0.93, bottom=0.07, wspace=0.03)
    save(figure, "pca_rgb.png", f"PCA of the 384 feature bands shown as red, green, blue; {RANDOM_WEIGHTS}.")

    figure, axes = plt.subplots(1, 2, figsize=(9.5, 4.9))
    axes[0].imshow(scene_image, extent=scene_extent)
    panel(axes[0], "Sample scene")
    axes[1].imshow(labels, cmap=class_colours(4), vmin=-0.5, vmax=3.5, extent=cluster_extent,
                   interpolation="nearest")
    panel(axes[1], f"iamap:cluster KMeans, N_CLUSTERS 4 (silhouette {clusters['SILHOUETTE']:.2f})")
    figure.subplots_adjust(left=0.01, right=0.99, top=0.93, bottom=0.07, wspace=0.03)
    save(figure, "clusters.png", f"Clusters of the 384-band features, no labels used; {RANDOM_WEIGHTS}.")

    figure, axes = plt.subplots(1, 2, figsize=(9.5, 4.9))
    axes[0].imshow(scene_image, extent=scene_extent)
    axes[0].scatter(river_xy[:, 0], river_xy[:, 1], s=18, c="#00e5ff", edgecolors="black", linewidths=0.6)
    panel(axes[0], f"{len(river_xy)} reference points on the river")
    shown = axes[1].imshow(similar[0], cmap="magma", vmin=-1, vmax=1, extent=similar_extent, interpolation="nearest")
    panel(axes[1], "iamap:similarity, AGGREGATION mean")
    figure.colorbar(shown, ax=axes[1], fraction=0.046, pad=0.02, label="cosine similarity")
    figure.subplots_adjust(left=0.01, right=0.88, top=0.93, bottom=0.07, wspace=0.03)
    save(figure, "similarity.png", f"Cosine similarity of every pixel's features to the mean river vector; "
                                   f"{RANDOM_WEIGHTS}.")

    codes = ml["CLASSES"]  # label -> class code (1, 2, 3... in alphabetical order)
    names = sorted(codes, key=codes.get)
    classes, class_extent = read(Path(ml["OUTPUT"]))
    with rasterio.open(ml["OUTPUT"]) as src:
        nodata = src.nodata
    classes = np.ma.masked_equal(classes[0], nodata)
    colours = dict(zip(names, named_class_colours(names)))  # the colours the ml tool gives these classes
    palette = ListedColormap([colours[name] for name in names])
    confidence, _ = read(Path(work / "confidence.tif"))
    import geopandas

    training = geopandas.read_file(points)
    figure, axes = plt.subplots(1, 3, figsize=(14, 4.9))
    axes[0].imshow(scene_image, extent=scene_extent)
    for name in names:
        chosen = training[training["class"] == name]
        axes[0].scatter(chosen.geometry.x, chosen.geometry.y, s=22, color=colours[name],
                        edgecolors="white", linewidths=0.7)
    panel(axes[0], f"{len(training)} labelled points ({POINTS_PER_CLASS} per class)")
    axes[1].imshow(classes, cmap=palette, vmin=0.5, vmax=len(names) + 0.5, extent=class_extent,
                   interpolation="nearest")
    panel(axes[1], f"iamap:ml RandomForest (accuracy {ml['ACCURACY']:.2f}, group 4-fold)")
    axes[1].legend(handles=[Patch(color=colours[n], label=n) for n in names],
                   loc="lower left", fontsize=8, framealpha=0.85)
    shown = axes[2].imshow(np.ma.masked_invalid(confidence[0]), cmap="viridis", vmin=0, vmax=1,
                           extent=class_extent, interpolation="nearest")
    panel(axes[2], "OUTPUT_CONFIDENCE")
    figure.colorbar(shown, ax=axes[2], fraction=0.046, pad=0.02, label="probability of the predicted class")
    figure.subplots_adjust(left=0.005, right=0.95, top=0.93, bottom=0.07, wspace=0.04)
    save(figure, "ml_classes.png", f"Land cover from a few labelled points: random forest on the features; "
                                   f"{RANDOM_WEIGHTS}.")
    print(f"done in {time.monotonic() - started:.0f} s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
