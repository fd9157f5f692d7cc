"""Training and test pixels of iamap:ml: the pixels under labelled points, polygons and lines, with the label and
the feature each pixel comes from.

A point gives the pixel under it, a polygon the pixels whose centre it holds (one pixel, the one under a point
inside it, when it is smaller than a pixel), a line the pixels it crosses. A feature gives at most
``per_feature`` pixels, drawn at random (seeded), so a large polygon does not outweigh the small ones. Pixels
outside the raster (or EXTENT) or on nodata are dropped, and the features that lose every pixel are counted.
Every pixel keeps the index of its feature, so that validation can keep a polygon's pixels in one fold.

A pixel under features of different labels (overlapping polygons that disagree) is left out, wherever it was
drawn, and counted: it cannot be both, and the log says how many there are.

A test layer is independent only where its pixels are not training pixels: :func:`covered_by` finds the test
pixels that a training feature covers (by the same rule, every pixel, not only those drawn), whatever the
layers' files: the training layer given again, a copy, or features drawn twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from affine import Affine
from rasterio.features import rasterize

from .errors import ParameterError
from .events import NULL_REPORTER
from .rasters import window_transform
from .vectors import pixel_indices, pixels_at, read_layer

#: Why labelled features were left out, as the log and the report say it.
NO_LABEL = "without a label"
OUTSIDE = "outside the raster or EXTENT"
ON_NODATA = "only on nodata pixels"
CONFLICTING = "with every pixel under a feature of another label"


@dataclass
class LabelledPixels:
    """Pixels under labelled features.

    Attributes
    ----------
    values : ndarray (n, bands) float32
    labels : ndarray (n,)
        The label of each pixel's feature, as the layer holds it (numbers or text).
    features : ndarray (n,) int64
        Index of the feature each pixel comes from (0, 1, 2... over the features read).
    feature_xy : ndarray (features, 2) float64
        A point inside each feature, in the raster's CRS (spatial blocks are assigned by it).
    folds : ndarray (n,) or None
        The fold field's value of each pixel's feature.
    layer : str
    features_used : int
        Features that gave at least one valid pixel.
    dropped : dict
        Features left out, by reason (:data:`NO_LABEL`, :data:`OUTSIDE`, :data:`ON_NODATA`).
    pixels : ndarray (n, 2) int64 or None
        Row and column of each pixel, relative to the window read.
    geometries : ndarray (features,) of shapely geometries, or None
        Each feature's geometry in the raster's CRS.
    """

    values: np.ndarray
    labels: np.ndarray
    features: np.ndarray
    feature_xy: np.ndarray
    folds: np.ndarray | None
    layer: str
    features_used: int
    dropped: dict = field(default_factory=dict)
    pixels: np.ndarray | None = None
    geometries: np.ndarray | None = None

    def subset(self, keep: np.ndarray) -> LabelledPixels:
        """The pixels where ``keep`` is true (the feature bookkeeping unchanged)."""
        return LabelledPixels(self.values[keep], self.labels[keep], self.features[keep], self.feature_xy,
                              None if self.folds is None else self.folds[keep], self.layer,
                              int(np.unique(self.features[keep]).size), self.dropped,
                              None if self.pixels is None else self.pixels[keep], self.geometries)


def check_field(frame, name: str, parameter: str, layer_parameter: str, layer: str) -> None:
    """Refuse a field the layer (named ``layer`` in the message) does not have, listing the ones it has."""
    if not name:
        raise ParameterError(parameter, f"no field given: choose the field of the {layer_parameter} layer that holds "
                                        "the labels.")
    if name not in frame.columns:
        fields = ", ".join(c for c in frame.columns if c != frame.geometry.name)
        raise ParameterError(parameter, f"the {layer_parameter} layer {layer} has no field {name!r}; its "
                                        f"fields are: {fields or 'none'}.")


def _missing(values) -> np.ndarray:
    """Whether each label is missing: null, NaN, or empty text."""
    # deferred: geopandas / shapely / pandas load only when vector data is read or written
    import pandas as pd

    series = pd.Series(values)
    return (series.isna() | series.astype(str).str.strip().eq("")).to_numpy()


def read_labelled_pixels(path: str, src, bands: list[int], window, label_field: str, per_feature: int, seed: int,
                         fold_field: str = "", parameter: str = "TEMPLATE", label_parameter: str = "GT_COL",
                         fold_parameter: str = "FOLD_COL", reporter=NULL_REPORTER, name: str = "") -> LabelledPixels:
    """The valid pixels under the labelled features of ``path`` inside ``window`` of ``src``; see the module
    docstring. Errors name ``parameter`` (the layer) or ``label_parameter`` (its field); messages name the layer
    ``name`` (how the user knows it; default: the file's name)."""
    name = name or Path(path).name
    frame = read_layer(path, src.crs, parameter)
    check_field(frame, label_field, label_parameter, parameter, name)
    if fold_field:
        check_field(frame, fold_field, fold_parameter, parameter, name)
    unlabelled = _missing(frame[label_field].to_numpy())
    if unlabelled.all():
        raise ParameterError(label_parameter, f"no feature of {name} has a value in {label_field!r}.")
    frame = frame[~unlabelled].reset_index(drop=True)
    codes = _label_codes(frame[label_field].to_numpy())
    near = _near_another_label(frame.geometry.to_numpy(), codes, src, window)
    rows, cols, owners, covered = _candidate_pixels(frame.geometry, src, window, per_feature,
                                                    np.random.default_rng(seed), near)
    values, valid, inside = pixels_at(src, bands, window, rows, cols, reporter)
    kept = np.unique(owners[valid])
    reached = np.unique(owners[inside])
    dropped = {NO_LABEL: int(unlabelled.sum()), OUTSIDE: len(frame) - len(reached),
               ON_NODATA: len(reached) - len(kept)}
    dropped = {reason: n for reason, n in dropped.items() if n}
    if not len(kept):
        raise ParameterError(parameter, f"none of the {len(frame)} labelled feature(s) of {name} lies on a "
                                        "valid pixel of the raster (all are outside it, outside EXTENT, or on "
                                        "nodata). Check the layer's location and CRS.")
    labels = frame[label_field].to_numpy()
    xy = np.array([(p.x, p.y) for p in frame.geometry.representative_point()], np.float64)
    sample = LabelledPixels(values[valid], labels[owners[valid]], owners[valid], xy,
                            frame[fold_field].to_numpy()[owners[valid]] if fold_field else None, path, len(kept),
                            dropped, np.column_stack([rows[valid], cols[valid]]), frame.geometry.to_numpy())
    sample = _without_conflicting_labels(sample, codes, covered, window, parameter, label_field, reporter)
    dropped = sample.dropped
    kinds = frame.geometry.geom_type.str.replace("Multi", "").value_counts()
    reporter.text(f"{parameter} {name}: {sample.features_used} labelled feature(s) ("
                  + ", ".join(f"{n} {kind.lower()}(s)" for kind, n in kinds.items()) + f") give {len(sample.values)} "
                  f"pixel(s)" + ("; left out: " + ", ".join(f"{n} {reason}" for reason, n in dropped.items())
                                 if dropped else "") + ".")
    if dropped:
        reporter.warning(f"{parameter}: " + ", ".join(f"{n} feature(s) {reason}" for reason, n in dropped.items())
                         + " were left out.")
    return sample


def _label_codes(labels: np.ndarray) -> np.ndarray:
    """0, 1, 2... for each distinct label."""
    # deferred: geopandas / shapely / pandas load only when vector data is read or written
    import pandas as pd

    return pd.factorize(pd.Series(labels, dtype=object))[0]


def _near_another_label(geometries: np.ndarray, codes: np.ndarray, src, window) -> set:
    """The features within a pixel of a feature of another label: those that may share a pixel with it."""
    # deferred: geopandas / shapely / pandas load only when vector data is read or written
    import shapely

    if len(np.unique(codes)) < 2:
        return set()
    boxes = shapely.box(*(np.array([g.bounds for g in geometries]) + _pixel_margin(src, window)).T)
    first, second = shapely.STRtree(geometries).query(boxes)
    return set(np.concatenate([first, second])[np.tile(codes[first] != codes[second], 2)].tolist())


def _without_conflicting_labels(sample: LabelledPixels, codes: np.ndarray, covered: dict, window, parameter: str,
                                label_field: str, reporter) -> LabelledPixels:
    """``sample`` without its pixels that features of two labels cover (``covered``: every pixel of the features
    near another label, by feature), said and counted."""
    if not covered:
        return sample
    labels = int(codes.max()) + 1
    pairs = np.sort(np.concatenate([keys * labels + codes[index] for index, keys in covered.items()]))
    keys = pairs // labels
    # sorted (pixel, label) pairs: a pixel next to itself with another label is covered by two labels or more
    disputed = keys[1:][(keys[1:] == keys[:-1]) & (pairs[1:] != pairs[:-1])]
    conflicting = np.isin(sample.pixels[:, 0] * window.width + sample.pixels[:, 1], disputed)
    if not conflicting.any():
        return sample
    count, features = int(conflicting.sum()), int(np.unique(sample.features[conflicting]).size)
    if conflicting.all():
        raise ParameterError(parameter, f"every one of its {count} pixel(s) lies under features of different labels "
                                        f"in {label_field!r} (overlapping features that disagree). Give each area "
                                        "one label.")
    kept = sample.subset(~conflicting)
    lost = sample.features_used - kept.features_used
    if lost:
        kept.dropped = {**sample.dropped, CONFLICTING: lost}
    reporter.warning(f"{parameter}: {count} pixel(s) of {features} feature(s) lie under features of different "
                     f"labels in {label_field!r} (overlapping features that disagree) and were left out: a pixel "
                     "cannot be both.")
    return kept


def covered_by(sample: LabelledPixels, geometries, src, window) -> np.ndarray:
    """Whether each pixel of ``sample`` is a pixel of one of ``geometries`` (in the raster's CRS): under a point,
    inside a polygon, crossed by a line, by the rule that gives the features their pixels (every pixel covered,
    not only those drawn with SAMPLE_PER_POLYGON).

    Only the geometries near a feature of ``sample`` (within a pixel of its bounds) are rasterised."""
    # deferred: geopandas / shapely / pandas load only when vector data is read or written
    import shapely

    shared = np.zeros(len(sample.values), bool)
    others = np.asarray(geometries, dtype=object)
    if not len(others) or not len(sample.values):
        return shared
    own = sample.geometries[np.unique(sample.features)]
    _, near = shapely.STRtree(others).query(shapely.box(*(np.array([g.bounds for g in own])
                                                          + _pixel_margin(src, window)).T))
    keys = [_pixel_keys(*_covered_pixels(others[index], src, window), window) for index in np.unique(near)]
    if keys:
        shared = np.isin(sample.pixels[:, 0] * window.width + sample.pixels[:, 1], np.concatenate(keys))
    return shared


def _pixel_margin(src, window) -> np.ndarray:
    """What widens bounds (xmin, ymin, xmax, ymax) by a pixel on every side: features that close may share one."""
    transform = window_transform(src, window)
    margin = max(abs(transform.a), abs(transform.e))
    return np.array([-margin, -margin, margin, margin])


def _pixel_keys(rows: np.ndarray, cols: np.ndarray, window) -> np.ndarray:
    """``row * width + column`` of the pixels (``rows``, ``cols``) inside ``window``."""
    inside = (rows >= 0) & (cols >= 0) & (rows < window.height) & (cols < window.width)  # a key per pixel
    return rows[inside] * window.width + cols[inside]


def _candidate_pixels(geometries, src, window, per_feature: int, rng, keep: set = frozenset()):
    """(rows, cols, feature index) of the pixels each geometry covers, relative to ``window``, at most
    ``per_feature`` each; rows/cols may fall outside the window (those pixels are dropped when read). Also the
    keys (:func:`_pixel_keys`) of every pixel covered by the features in ``keep``, by feature."""
    rows, cols, owners, covered = [], [], [], {}
    for index, geometry in enumerate(geometries):
        r, c = _covered_pixels(geometry, src, window)
        if index in keep:
            covered[index] = _pixel_keys(r, c, window)
        if len(r) > per_feature:
            pick = np.sort(rng.choice(len(r), per_feature, replace=False))
            r, c = r[pick], c[pick]
        rows.append(r)
        cols.append(c)
        owners.append(np.full(len(r), index, np.int64))
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(owners), covered


def _covered_pixels(geometry, src, window) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (rows, cols relative to ``window``) under a point, inside a polygon, or crossed by a line."""
    # deferred: geopandas / shapely / pandas load only when vector data is read or written
    import shapely

    if geometry.geom_type in ("Point", "MultiPoint"):
        xy = shapely.get_coordinates(geometry)
        return pixel_indices(src, window, xy[:, 0], xy[:, 1])
    xmin, ymin, xmax, ymax = geometry.bounds
    transform = window_transform(src, window)
    (row_a, row_b), (col_a, col_b) = zip(*(pixel_indices(src, window, np.array([x]), np.array([y]))
                                           for x, y in ((xmin, ymin), (xmax, ymax))))
    row0, row1 = max(0, int(min(row_a[0], row_b[0]))), min(window.height - 1, int(max(row_a[0], row_b[0])))
    col0, col1 = max(0, int(min(col_a[0], col_b[0]))), min(window.width - 1, int(max(col_a[0], col_b[0])))
    if row0 > row1 or col0 > col1:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    lines = geometry.geom_type in ("LineString", "MultiLineString")
    mask = rasterize([(geometry, 1)], out_shape=(row1 - row0 + 1, col1 - col0 + 1), dtype="uint8",
                     transform=transform * Affine.translation(col0, row0), all_touched=lines)
    r, c = np.nonzero(mask)
    if not len(r) and not lines:  # smaller than a pixel: the pixel under a point inside it
        point = geometry.representative_point()
        return pixel_indices(src, window, np.array([point.x]), np.array([point.y]))
    return (r + row0).astype(np.int64), (c + col0).astype(np.int64)
