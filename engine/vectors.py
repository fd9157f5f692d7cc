"""Reference locations from vector files: read, reproject to the raster's CRS, points drawn inside polygons
and along lines, and the pixels under them.

Both halves are vectorised so that RANDOM_SAMPLES' maximum (100 000 points) takes seconds: points are drawn
with array operations per geometry, and pixels are read once per raster block holding points, not per point.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from .errors import IamapError, ParameterError
from .events import NULL_REPORTER
from .rasters import read_padded, window_transform

#: Bytes of float32 pixel data per read of :func:`pixel_values` (a raster block, cut to this when bigger).
READ_BYTES = 16 * 2**20
#: Rounds of candidate points drawn in a polygon's bounding box before giving up on a sliver.
_DRAW_ROUNDS = 100


def read_reference_points(path: str, crs, samples: int, seed: int = 0, parameter: str = "TEMPLATE",
                          reporter=NULL_REPORTER, name: str = ""):
    """Points (GeoDataFrame in ``crs``) from ``path``: points as they are, ``samples`` random points spread over
    the polygons (by area) and lines (by length). Each point keeps the index of its source feature (``source``).
    The log says what was read from the layer ``name`` (how the user knows it; default: the file's name).

    Polygons without area and lines without length cannot hold random points: the error says so when nothing
    else is left.
    """
    # deferred: geopandas / shapely / pandas load only when vector data is read or written
    import geopandas as gpd
    import pandas as pd

    frame = read_layer(path, crs, parameter)
    frame["source"] = frame.index
    exploded = frame.explode(index_parts=False).reset_index(drop=True)
    kinds = exploded.geometry.geom_type
    points = exploded[kinds == "Point"][["source", "geometry"]]
    shapes = exploded[kinds.isin(["Polygon", "LineString"])]
    polygon = (shapes.geometry.geom_type == "Polygon").to_numpy()
    weights = np.where(polygon, shapes.geometry.area.to_numpy(), shapes.geometry.length.to_numpy())
    if len(shapes) and samples > 0 and not weights.sum() > 0:
        degenerate = _degenerate(polygon)
        if points.empty:
            raise ParameterError(parameter, f"its {degenerate}, so no random point can be drawn in them "
                                            "(RANDOM_SAMPLES). Use polygons with an area, lines with a length, or a "
                                            "point layer.")
        reporter.warning(f"{parameter}: its {degenerate}; only the layer's points are used.")
    drawn = [_draw_points(shapes, polygon, weights, samples, np.random.default_rng(seed))] \
        if samples > 0 and weights.sum() > 0 else []
    if drawn and len(drawn[0]) < samples:
        reporter.warning(f"{parameter}: only {len(drawn[0])} of the {samples} random points (RANDOM_SAMPLES) could be "
                         "drawn: some polygons are slivers too thin to draw points in.")
    result = gpd.GeoDataFrame(pd.concat([points, *drawn], ignore_index=True), geometry="geometry", crs=crs)
    reporter.text(_read_summary(name or Path(path).name, len(points), drawn[0] if drawn else (), polygon))
    if result.empty and samples == 0:
        raise ParameterError("RANDOM_SAMPLES", f"is 0 and the {parameter} layer has no point: set RANDOM_SAMPLES to "
                                               "the number of points to draw in its polygons and along its lines.")
    if result.empty:
        raise ParameterError(parameter, "no random point could be drawn in its polygons: they are slivers too thin "
                                        "to hold one. Use polygons with an area, lines, or a point layer.")
    return result


def read_layer(path: str, crs, parameter: str):
    """The features of the vector file ``path`` that have a geometry, reprojected to ``crs`` and indexed 0, 1, 2...
    (GeoDataFrame); a file that cannot be read, holds no geometry or has no CRS is an error naming ``parameter``."""
    # deferred: geopandas / shapely / pandas load only when vector data is read or written
    import geopandas as gpd

    try:
        frame = gpd.read_file(path)
    except Exception as exc:
        raise ParameterError(parameter, f"cannot read {path} as a vector layer: {exc}") from None
    frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
    if frame.empty:
        raise ParameterError(parameter, "the layer has no geometry.")
    if frame.crs is None:
        raise ParameterError(parameter, "the layer has no CRS; set its CRS in QGIS (Layer Properties > Source).")
    if crs is None:
        raise ParameterError("INPUT", f"the raster has no CRS, so the features of {parameter} cannot be placed on it. "
                                      "Assign the raster its CRS (Raster > Projections > Assign Projection in QGIS).")
    return frame.to_crs(crs).reset_index(drop=True)


def _read_summary(name: str, points: int, drawn, polygon: np.ndarray) -> str:
    """'Reference locations of NAME: 3 point(s), and 500 random point(s) drawn in its 2 polygon(s)': only what
    the layer holds (no random points for a points-only layer)."""
    parts = [f"{points} point(s)"] if points else []
    if len(drawn):
        shapes = [f"in its {int(polygon.sum())} polygon(s)"] if polygon.any() else []
        shapes += [f"along its {int((~polygon).sum())} line(s)"] if (~polygon).any() else []
        parts.append(f"{len(drawn)} random point(s) drawn {' and '.join(shapes)}")
    return f"Reference locations of {name}: {', and '.join(parts)}."


def _degenerate(polygon: np.ndarray) -> str:
    """'2 polygon(s) have no area and its 1 line(s) no length', for a layer whose shapes are all degenerate."""
    polygons, lines = int(polygon.sum()), int((~polygon).sum())
    parts = ([f"{polygons} polygon(s) have no area"] if polygons else []) + \
        ([f"{lines} line(s) {'no' if polygons else 'have no'} length"] if lines else [])
    return " and its ".join(parts)


def _draw_points(shapes, polygon: np.ndarray, weights: np.ndarray, samples: int, rng):
    """GeoDataFrame of ``samples`` random points spread over ``shapes`` in proportion to ``weights``."""
    # deferred: geopandas / shapely / pandas load only when vector data is read or written
    import geopandas as gpd
    import shapely

    counts = rng.multinomial(samples, weights / weights.sum())
    xy, sources = [], []
    for geometry, source, is_polygon, count in zip(shapes.geometry, shapes["source"], polygon, counts):
        if count == 0:
            continue
        if is_polygon:
            xy.append(_points_in_polygon(geometry, count, rng))
        else:
            distances = rng.uniform(0, geometry.length, count)
            xy.append(shapely.get_coordinates(shapely.line_interpolate_point(geometry, distances)))
        sources.append(np.full(len(xy[-1]), source))
    xy = np.concatenate(xy)
    return gpd.GeoDataFrame({"source": np.concatenate(sources)}, geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]),
                            crs=shapes.crs)


def _points_in_polygon(polygon, count: int, rng) -> np.ndarray:
    """``count`` points (count, 2) uniform in ``polygon``, by rejection from its bounding box (fewer for a sliver
    that rejects almost everything)."""
    # deferred: geopandas / shapely / pandas load only when vector data is read or written
    import shapely

    shapely.prepare(polygon)
    xmin, ymin, xmax, ymax = polygon.bounds
    found, total = [], 0
    for _ in range(_DRAW_ROUNDS):
        xy = np.column_stack([rng.uniform(xmin, xmax, 4 * count), rng.uniform(ymin, ymax, 4 * count)])
        inside = xy[shapely.contains_xy(polygon, xy[:, 0], xy[:, 1])]
        found.append(inside)
        total += len(inside)
        if total >= count:
            break
    return np.concatenate(found)[:count]


def pixel_values(src, bands: list[int], window, points, reporter=NULL_REPORTER, parameter: str = "TEMPLATE"):
    """Values (n, bands) at the pixels under ``points`` inside ``window``; points outside it or on nodata are
    dropped with a warning counting them. Returns (values, kept points).

    Pixels are read one raster block at a time (only blocks holding points, each once), so the cost grows with
    the blocks touched, not with the number of points.
    """
    rows, cols = pixel_indices(src, window, points.geometry.x.to_numpy(), points.geometry.y.to_numpy())
    values, valid, inside = pixels_at(src, bands, window, rows, cols, reporter)
    outside, on_nodata = len(points) - int(inside.sum()), int(inside.sum() - valid.sum())
    if outside or on_nodata:
        reporter.warning(f"{parameter}: {outside} reference point(s) outside the raster{' extent' if outside else ''} "
                         f"and {on_nodata} on nodata were dropped; {int(valid.sum())} used.")
    if not valid.any():
        raise IamapError(f"{parameter}: none of the {len(points)} reference points lies on a valid pixel of the "
                         "raster (all are outside it, outside EXTENT, or on nodata). Check the layer's location and "
                         "CRS.")
    return values[valid], points[valid].reset_index(drop=True)


def pixel_indices(src, window, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) relative to ``window`` of the pixels holding the points (x, y) in the raster's CRS."""
    cols, rows = ~window_transform(src, window) * (x, y)
    return np.floor(rows).astype(np.int64), np.floor(cols).astype(np.int64)


def pixels_at(src, bands: list[int], window, rows: np.ndarray, cols: np.ndarray, reporter=NULL_REPORTER):
    """Values (n, bands) float32 of the pixels (``rows``, ``cols``) relative to ``window``, whether each is valid,
    and whether each is inside the window. Pixels are read one raster block at a time (only blocks holding
    pixels, each once), so the cost grows with the blocks touched, not with the number of pixels."""
    inside = (cols >= 0) & (rows >= 0) & (cols < window.width) & (rows < window.height)
    where = np.flatnonzero(inside)
    values = np.full((len(rows), len(bands)), np.nan, np.float32)
    valid = np.zeros(len(rows), bool)
    groups = _block_groups(src, len(bands), window, rows[where], cols[where])
    for done, members in enumerate(groups, start=1):
        members = where[members]
        r, c = rows[members], cols[members]
        row0, col0 = int(r.min()), int(c.min())
        data, ok = read_padded(src, bands, window, row0, int(r.max()) + 1 - row0, col0, int(c.max()) + 1 - col0)
        values[members] = data[:, r - row0, c - col0].T
        valid[members] = ok[:, r - row0, c - col0].all(axis=0)
        reporter.progress(100 * done / len(groups))
    return values, valid, inside


def _block_groups(src, band_count: int, window, rows: np.ndarray, cols: np.ndarray) -> list[np.ndarray]:
    """Indices into ``rows``/``cols`` (pixels relative to ``window``) grouped by the raster block holding them.

    Blocks are the raster's own (what GDAL decompresses anyway), cut to :data:`READ_BYTES` of float32 when larger
    (an untiled file stored as one strip), so each group is one bounded read.
    """
    block_h, block_w = src.block_shapes[0]
    cell_h = max(1, min(block_h, READ_BYTES // max(1, block_w * band_count * 4)))
    cell_w = max(1, min(block_w, READ_BYTES // (cell_h * band_count * 4)))
    cells_per_row = src.width // cell_w + 1
    key = ((rows + window.row_off) // cell_h) * cells_per_row + (cols + window.col_off) // cell_w
    order = np.argsort(key, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(key[order])) + 1) if len(order) else []


#: Vector formats OUTPUT_POINTS can be written in, by file extension.
POINT_FORMATS = {".gpkg": "GPKG", ".shp": "ESRI Shapefile", ".geojson": "GeoJSON", ".json": "GeoJSON", ".csv": "CSV"}


def check_points_path(path: str, parameter: str = "OUTPUT_POINTS") -> None:
    """Refuse a file name whose extension names a format IAMAP does not write (before any work)."""
    if path and Path(path).suffix.lower() not in POINT_FORMATS:
        raise ParameterError(parameter, f"{Path(path).name}: give a file name ending in "
                                        f"{', '.join(POINT_FORMATS)} (the extension chooses the format).")


def write_points(frame, path: str, parameter: str = "OUTPUT_POINTS") -> Path:
    """Write ``frame`` in the format its extension names, atomically: into a temporary folder beside the target,
    then every file of the dataset (a shapefile has several) is moved under its final name.

    CSV gets x, y and wkt columns (in the frame's CRS) that QGIS's delimited-text reader takes.
    """
    target = Path(path)
    check_points_path(path, parameter)
    driver = POINT_FORMATS[target.suffix.lower()]
    staging = target.with_name(f".{target.name}.tmp-dir")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        staged = staging / target.name
        if driver == "CSV":
            geometry = frame.geometry
            frame.assign(x=geometry.x, y=geometry.y, wkt=geometry.to_wkt()).drop(
                columns=frame.geometry.name).to_csv(staged, index=False)
        else:
            frame.to_file(staged, driver=driver)
        for part in staging.iterdir():
            os.replace(part, target.with_name(part.name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
