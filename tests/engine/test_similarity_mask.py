"""Mask polygons of a thresholded similarity map: which pixels, where, what each polygon records."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS
from shapely.geometry import box

from engine.errors import ParameterError
from engine.similarity_mask import mask_polygons, write_mask

TRANSFORM = Affine(10, 0, 1000, 0, -10, 2000)


def test_polygons_cover_the_pixels_at_or_above_the_threshold_and_never_nodata():
    values = np.full((4, 6), 0.1, np.float32)
    values[1:3, 1:3] = 0.9  # a 2 x 2 block
    values[0, 5] = 0.5  # exactly the threshold: in
    values[3, 0] = np.nan
    polygons = mask_polygons(values, 0.5, TRANSFORM)
    union = gpd.GeoSeries(polygons).union_all()
    assert union.equals(box(1010, 1970, 1030, 1990).union(box(1050, 1990, 1060, 2000)))
    assert mask_polygons(values, -1, TRANSFORM)[0].area == pytest.approx((24 - 1) * 100)  # all but the nodata pixel


def test_write_mask_records_threshold_and_references_and_refuses_bad_output(tmp_path):
    values = np.zeros((3, 3), np.float32)
    values[0, 0] = 1
    count = write_mask(values, 0.8, TRANSFORM, CRS.from_epsg(32633), str(tmp_path / "m.gpkg"),
                       {"threshold": 0.8, "aggregation": "max", "references": 2},
                       np.array([[1005, 1995], [1015, 1985]]))
    frame = gpd.read_file(tmp_path / "m.gpkg")
    assert count == len(frame) == 1 and frame.crs.to_epsg() == 32633
    assert frame.iloc[0]["reference_points"] == "MULTIPOINT ((1005 1995), (1015 1985))"
    assert (frame.iloc[0]["threshold"], frame.iloc[0]["aggregation"], frame.iloc[0]["references"]) == (0.8, "max", 2)
    with pytest.raises(ParameterError, match="^OUTPUT: .*ending in .gpkg"):
        write_mask(values, 0.8, TRANSFORM, CRS.from_epsg(32633), str(tmp_path / "m.shp"), {}, np.zeros((1, 2)))
    with pytest.raises(ParameterError, match="^threshold: no pixel"):
        write_mask(values, 1.5, TRANSFORM, CRS.from_epsg(32633), str(tmp_path / "n.gpkg"), {}, np.zeros((1, 2)))
    assert not (tmp_path / "n.gpkg").exists()
