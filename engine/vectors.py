"""Reference locations from vector files: read, reproject to the raster's CRS, points drawn inside polygons
and along lines, and the pixels under them."""

from __future__ import annotations

import numpy as np

from .errors import IamapError, ParameterError
from .events import NULL_REPORTER


def read_reference_points(path: str, crs, samples: int, seed: int = 0, parameter: str = "TEMPLATE"):
    """Points (GeoDataFrame in ``crs``) from ``path``: points as they are, ``samples`` random points spread over
    the polygons (by area) and lines (by length). Each point keeps the index of its source feature (``source``)."""
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
    frame = frame.to_crs(crs).reset_index(drop=True)
    frame["source"] = frame.index
    exploded = frame.explode(index_parts=False).reset_index(drop=True)
    kinds = exploded.geometry.geom_type
    points = exploded[kinds == "Point"][["source", "geometry"]]
    rng = np.random.default_rng(seed)
    drawn = []
    areas = exploded[kinds == "Polygon"]
    lines = exploded[kinds == "LineString"]
    weights = np.concatenate([areas.geometry.area.to_numpy(), lines.geometry.length.to_numpy()])
    if len(weights) and samples > 0:
        counts = rng.multinomial(samples, weights / weights.sum()) if weights.sum() > 0 else np.zeros(len(weights), int)
        for (idx, row), count in zip(list(areas.iterrows()) + list(lines.iterrows()), counts):
            if count == 0:
                continue
            geometry = row.geometry
            if geometry.geom_type == "Polygon":
                xy = _points_in_polygon(geometry, count, rng)
            else:
                xy = [geometry.interpolate(d).coords[0] for d in rng.uniform(0, geometry.length, count)]
            drawn.append(gpd.GeoDataFrame({"source": [row.source] * len(xy)},
                                          geometry=gpd.points_from_xy(*np.asarray(xy).T), crs=crs))
    import pandas as pd

    result = gpd.GeoDataFrame(pd.concat([points, *drawn], ignore_index=True), geometry="geometry", crs=crs)
    if result.empty:
        raise ParameterError(parameter, "no reference point: the layer has no point and RANDOM_SAMPLES is 0.")
    return result


def _points_in_polygon(polygon, count: int, rng) -> list[tuple[float, float]]:
    from shapely import contains_xy

    xmin, ymin, xmax, ymax = polygon.bounds
    found = np.empty((0, 2))
    for _ in range(100):
        xy = np.column_stack([rng.uniform(xmin, xmax, 4 * count), rng.uniform(ymin, ymax, 4 * count)])
        found = np.vstack([found, xy[contains_xy(polygon, xy[:, 0], xy[:, 1])]])
        if len(found) >= count:
            break
    return [tuple(p) for p in found[:count]]


def pixel_values(src, bands: list[int], window, points, reporter=NULL_REPORTER, parameter: str = "TEMPLATE"):
    """Values (n, bands) at the pixels under ``points`` inside ``window``; points outside it or on nodata are
    dropped with a warning counting them. Returns (values, kept points)."""
    from .rasters import read_padded

    inverse = ~src.window_transform(window)
    cols, rows = inverse * (points.geometry.x.to_numpy(), points.geometry.y.to_numpy())
    cols, rows = np.floor(cols).astype(int), np.floor(rows).astype(int)
    inside = (cols >= 0) & (rows >= 0) & (cols < window.width) & (rows < window.height)
    values = np.full((len(points), len(bands)), np.nan, np.float32)
    valid = np.zeros(len(points), bool)
    for i in np.flatnonzero(inside):
        data, ok = read_padded(src, bands, window, rows[i], 1, cols[i], 1)
        values[i], valid[i] = data[:, 0, 0], ok[:, 0, 0].all()
    outside, on_nodata = int((~inside).sum()), int((inside & ~valid).sum())
    if outside or on_nodata:
        reporter.warning(f"{parameter}: {outside} reference point(s) outside the raster{' extent' if outside else ''} "
                         f"and {on_nodata} on nodata were dropped; {int(valid.sum())} used.")
    if not valid.any():
        raise IamapError(f"{parameter}: none of the {len(points)} reference points lies on a valid pixel of the "
                         "raster (all are outside it, outside EXTENT, or on nodata). Check the layer's location and CRS.")
    return values[valid], points[valid].reset_index(drop=True)
