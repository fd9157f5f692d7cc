"""A thresholded similarity map as polygons: what the explorer exports, ready as ``TEMPLATE`` for ``ml`` or
``similarity``."""

from __future__ import annotations

import numpy as np

from .errors import ParameterError
from .polygons import array_polygons, at_least
from .vectors import write_points


def mask_polygons(similarity: np.ndarray, threshold: float, transform) -> list:
    """Shapely polygons of the pixels of ``similarity`` (rows, cols; NaN = nodata) at or above ``threshold``: the
    same polygons as every tool's OUTPUT_POLYGONS (:mod:`engine.polygons`)."""
    classes, keep = at_least(threshold)(similarity[None], np.isfinite(similarity))
    return [polygon for _, polygon in array_polygons(classes, keep, transform)]


def write_mask(similarity: np.ndarray, threshold: float, transform, crs, output: str, record: dict,
               references_xy: np.ndarray) -> int:
    """Write the polygons of :func:`mask_polygons` to the GeoPackage ``output``, each with the fields of
    ``record`` (threshold, aggregation...) and ``reference_points``: the references as a WKT multipoint in the
    layer's CRS. Returns the number of polygons; none reaching the threshold is an error naming it."""
    # deferred: geopandas / shapely / pandas load only when vector data is read or written
    import geopandas as gpd
    from shapely.geometry import MultiPoint

    if not str(output).lower().endswith(".gpkg"):
        raise ParameterError("OUTPUT", f"{output}: the mask is written as a GeoPackage; give a name ending in .gpkg.")
    polygons = mask_polygons(similarity, threshold, transform)
    if not polygons:
        raise ParameterError("threshold", f"no pixel has a similarity of {threshold:g} or more: lower the threshold.")
    references = MultiPoint([tuple(xy) for xy in references_xy]).wkt
    frame = gpd.GeoDataFrame({**{key: [value] * len(polygons) for key, value in record.items()},
                              "reference_points": [references] * len(polygons)}, geometry=polygons, crs=crs)
    write_points(frame, str(output), "OUTPUT")
    return len(polygons)
