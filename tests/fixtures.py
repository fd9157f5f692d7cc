"""Small generated rasters and vectors for the tests (TorchGeo's habit: data made by code, not shipped)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

UTM_ORIGIN = (500_000.0, 4_000_000.0)


def write_raster(path: Path, data: np.ndarray, crs: str = "EPSG:32633", res: float = 10.0, nodata=None,
                 origin: tuple[float, float] = UTM_ORIGIN) -> Path:
    """Write ``data`` (bands, rows, cols) as a GeoTIFF with its top-left corner at ``origin``."""
    import rasterio
    from rasterio.transform import from_origin

    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                       dtype=data.dtype, crs=crs, transform=from_origin(*origin, res, res), nodata=nodata) as dst:
        dst.write(data)
    return Path(path)


def random_raster(path: Path, width: int, height: int, bands: int = 3, dtype="uint8", seed: int = 0, **kwargs) -> Path:
    rng = np.random.default_rng(seed)
    high = 250 if np.dtype(dtype) == np.uint8 else 10000
    return write_raster(path, rng.integers(1, high, (bands, height, width)).astype(dtype), **kwargs)


def regions_raster(path: Path, width: int = 256, height: int = 256, bands: int = 8, regions: int = 4, seed: int = 0,
                   noise: float = 0.05, nodata_corner: int = 0) -> tuple[Path, np.ndarray]:
    """A float32 'feature' raster made of vertical stripes with distinct mean vectors.

    Returns the path and the (height, width) label image; ``nodata_corner`` pixels square at the top-left are
    NaN (the raster's nodata), labelled -1.
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (regions, bands))
    labels = np.repeat(np.arange(regions), int(np.ceil(width / regions)))[:width]
    labels = np.broadcast_to(labels, (height, width)).copy()
    data = centres[labels].transpose(2, 0, 1) + rng.normal(0, noise, (bands, height, width))
    data = data.astype(np.float32)
    if nodata_corner:
        data[:, :nodata_corner, :nodata_corner] = np.nan
        labels[:nodata_corner, :nodata_corner] = -1
    return write_raster(path, data, nodata=float("nan")), labels


def described(src):
    """What a test checks of an open raster, still readable after the file is closed."""
    from types import SimpleNamespace

    return SimpleNamespace(crs=src.crs, transform=src.transform, shape=src.shape, res=src.res, count=src.count,
                           dtypes=src.dtypes, nodata=src.nodata, descriptions=src.descriptions, tags=src.tags())


def skops_archive(schema: dict) -> bytes:
    """A skops archive whose schema is ``schema``: how a crafted model payload is made (protocol and skops version
    taken from a real archive)."""
    import io
    import json
    import zipfile

    import skops.io as sio

    real = json.loads(zipfile.ZipFile(io.BytesIO(sio.dumps(("x",)))).read("schema.json"))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("schema.json", json.dumps({**schema, "protocol": real["protocol"],
                                                    "_skops_version": real["_skops_version"]}))
    return buffer.getvalue()


def opener_payload(marker: Path) -> bytes:
    """A skops payload that creates ``marker`` when built, ``open(marker, "w")``: stands for any code that a
    crafted file would run."""
    import json

    text = {"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode", "is_json": True}
    return skops_archive({"__class__": "open", "__module__": "builtins", "__loader__": "ConstructorFromReduceNode",
                          "content": {"__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode",
                                      "content": [{**text, "content": json.dumps(str(marker))},
                                                  {**text, "content": json.dumps("w")}]}})


def pixel_centres(raster: Path, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map coordinates (x, y) of the centres of pixels (rows, cols) of ``raster``."""
    import rasterio

    with rasterio.open(raster) as src:
        xs, ys = rasterio.transform.xy(src.transform, rows, cols)
        return np.asarray(xs), np.asarray(ys)


def labelled_points(path: Path, raster: Path, truth: np.ndarray, per_class: int, seed: int = 0,
                    names=lambda label: f"class {label}", crs: str = "EPSG:32633") -> Path:
    """A point layer of ``per_class`` random pixel centres of each label of ``truth`` (labels < 0 skipped), with
    the label as ``names(label)`` in the field ``label``; written in ``crs``."""
    import geopandas as gpd

    rng = np.random.default_rng(seed)
    rows, cols, labels = [], [], []
    for label in np.unique(truth[truth >= 0]):
        r, c = np.nonzero(truth == label)
        pick = rng.choice(len(r), per_class, replace=False)
        rows += list(r[pick])
        cols += list(c[pick])
        labels += [names(int(label))] * per_class
    x, y = pixel_centres(raster, np.array(rows), np.array(cols))
    frame = gpd.GeoDataFrame({"label": labels}, geometry=gpd.points_from_xy(x, y), crs="EPSG:32633").to_crs(crs)
    frame.to_file(path)
    return Path(path)


def square(x: float, y: float, half: float):
    from shapely.geometry import box

    return box(x - half, y - half, x + half, y + half)


def all_pixels(raster: Path) -> np.ndarray:
    """Every pixel of ``raster`` as (n, bands), row-major: what IAMAP 1.0.2 read for its scaler and its output."""
    import rasterio

    with rasterio.open(raster) as src:
        data = src.read()
    return data.reshape(data.shape[0], -1).T


def pickle_like_1_0_2(path: Path, raster: Path, estimator, subset: int = 0, seed: int = 42) -> Path:
    """A reduction or cluster ``.pkl`` as IAMAP 1.0.2 wrote it: a StandardScaler fitted on every pixel of the
    raster, the estimator fitted on the scaled pixels (a SUBSET of them drawn with ``np.random.seed``), then
    ``joblib.dump`` of the bare estimator."""
    import joblib
    from sklearn.preprocessing import StandardScaler

    pixels = all_pixels(raster)
    scaler = StandardScaler().fit(pixels)
    if subset:
        pixels = pixels[np.random.RandomState(seed).choice(len(pixels), size=subset, replace=False)]
    joblib.dump(estimator.fit(scaler.transform(pixels)), path)
    return Path(path)


#: The changed region of :func:`change_scene`: rows, then columns (a block spanning several strips and both
#: halves of the scene).
CHANGED_ROWS, CHANGED_COLS = slice(40, 100), slice(30, 110)


def change_scene(folder: Path, width: int = 160, height: int = 128, bands: int = 16, seed: int = 0,
                 noise: float = 0.05) -> tuple[Path, Path, np.ndarray]:
    """Two dates of a generated 'feature' scene of four vertical stripes: the second date has the vectors of
    another land cover in one rectangle (:data:`CHANGED_ROWS`, :data:`CHANGED_COLS`), and fresh noise elsewhere.

    Returns (first date, second date, the (height, width) truth mask of the change)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (5, bands))
    labels = np.broadcast_to(np.repeat(np.arange(4), int(np.ceil(width / 4)))[:width], (height, width)).copy()
    truth = np.zeros((height, width), bool)
    truth[CHANGED_ROWS, CHANGED_COLS] = True
    later = labels.copy()
    later[truth] = 4  # a land cover that the first date has nowhere

    def date(codes):
        return (centres[codes].transpose(2, 0, 1) + rng.normal(0, noise, (bands, height, width))).astype(np.float32)
    return (write_raster(folder / "date1.tif", date(labels), nodata=float("nan")),
            write_raster(folder / "date2.tif", date(later), nodata=float("nan")), truth)


def reprojected(path: Path, output: Path, crs: str, resolution: float) -> Path:
    """``path`` warped (bilinear) to ``crs`` at ``resolution``: the same scene on another grid."""
    import rasterio
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    with rasterio.open(path) as src:
        transform, width, height = calculate_default_transform(src.crs, crs, src.width, src.height, *src.bounds,
                                                               resolution=resolution)
        profile = dict(src.profile, crs=crs, transform=transform, width=width, height=height)
        with rasterio.open(output, "w", **profile) as dst:
            for band in range(1, src.count + 1):
                reproject(rasterio.band(src, band), rasterio.band(dst, band), dst_transform=transform, dst_crs=crs,
                          resampling=Resampling.bilinear, src_nodata=src.nodata, dst_nodata=src.nodata)
    return Path(output)


def iou(found: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two boolean masks."""
    return float((found & truth).sum() / max((found | truth).sum(), 1))


class Interrupt(Exception):
    """A run cut short by :func:`interrupt_after`'s row writer."""


def interrupt_after(monkeypatch, rows: int):
    """Make the encoder's row writer raise :class:`Interrupt` once ``rows`` output rows are durable (a run
    killed mid-way); returns a call that puts the real writer back."""
    from engine import encoder as encoder_module

    writer = encoder_module.RowWriter

    class FailingWriter(writer):
        def _write(self, final):
            super()._write(final)
            if self.next_row >= rows:
                raise Interrupt()

    monkeypatch.setattr(encoder_module, "RowWriter", FailingWriter)
    return lambda: monkeypatch.setattr(encoder_module, "RowWriter", writer)
