"""Rasters as polygons, strip by strip: no seams at strip edges, exact areas, attributes, CRS, nodata, odd shapes."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
from rasterio.crs import CRS

from engine.errors import ParameterError
from engine.events import NULL_REPORTER
from engine.polygons import (PolygonOptions, SeamlessPolygons, area_unit, array_polygons, at_least, every_value,
                             write_polygons)

from ..fixtures import write_raster

OPTIONS = PolygonOptions("classes.tif", "iamap:cluster", {"N_CLUSTERS": 3}, {1: "water", 2: "forest"})


def polygonise(tmp_path, data, rows, classify=None, options=OPTIONS, name="p.gpkg", **raster):
    path = write_raster(tmp_path / f"r{rows}.tif", data[None], **raster)
    summary = write_polygons(path, [1], classify or every_value(), str(tmp_path / name), options, NULL_REPORTER,
                             rows=rows)
    return gpd.read_file(summary["OUTPUT_POLYGONS"]), summary


def test_a_region_spanning_many_strips_is_one_polygon_with_exactly_its_area(tmp_path):
    data = np.zeros((50, 40), np.int16)
    data[3:47, 5:35] = 1  # a U shape whose arms join only in the last strips
    data[3:40, 15:25] = 0
    for rows in (1, 4, 7, 50):
        frame, summary = polygonise(tmp_path, data, rows, name=f"p{rows}.gpkg")
        ones = frame[frame.class_value == 1]
        assert len(ones) == 1, rows
        assert ones.area.iloc[0] == pytest.approx((data == 1).sum() * 100, abs=1e-6)
        assert ones.geometry.iloc[0].geom_type == "Polygon" and ones.geometry.iloc[0].is_valid
        assert summary["POLYGONS"] == len(frame) == 2  # the U and the background around it, holes included


def test_any_strip_height_gives_the_polygons_of_the_whole_raster(tmp_path):
    data = np.random.default_rng(3).integers(0, 3, (37, 29)).astype(np.uint8)
    data[5:30, 4:20] = 2
    reference = sorted((v, round(a, 6)) for v, a in zip(*_pieces(data, 37)))
    for rows in (1, 2, 5, 16):
        assert sorted((v, round(a, 6)) for v, a in zip(*_pieces(data, rows))) == reference
    for value in range(3):  # every pixel is in exactly one polygon of its class
        assert sum(a for v, a in reference if v == value) == (data == value).sum()


def _pieces(data, rows):
    builder, found = SeamlessPolygons(), []
    for row in range(0, data.shape[0], rows):
        found += builder.add(data[row:row + rows].astype(np.int64), np.ones(data[row:row + rows].shape, bool))
    found += builder.finish()
    return [v for v, _ in found], [p.area for _, p in found]


def test_pixels_touching_only_at_a_corner_across_a_strip_edge_stay_apart():
    data = np.zeros((4, 4), np.int64)
    data[1, 1] = data[2, 2] = 1  # diagonal neighbours on both sides of the edge between rows 1 and 2
    builder = SeamlessPolygons()
    keep = data == 1
    found = builder.add(data[:2], keep[:2]) + builder.add(data[2:], keep[2:]) + builder.finish()
    assert sorted(p.area for _, p in found) == [1, 1]


def test_attributes_crs_and_area_unit(tmp_path):
    data = np.zeros((20, 20), np.uint8)
    data[2:8, 2:8] = 1
    data[10:18, 3:15] = 2
    frame, summary = polygonise(tmp_path, data, 3, classify=every_value(skip=(0,)))
    assert frame.crs.to_epsg() == 32633 and summary["AREA_UNIT"] == "m\u00b2"
    assert sorted(frame.class_value) == [1, 2] and set(frame.class_name) == {"water", "forest"}
    row = frame[frame.class_value == 2].iloc[0]
    assert row.area == pytest.approx(96 * 100) and row.area_unit == "m\u00b2"
    assert row.source == "classes.tif" and row.tool == "iamap:cluster"
    assert json.loads(row.parameters) == {"N_CLUSTERS": 3}
    assert summary["POLYGON_AREA"] == pytest.approx((36 + 96) * 100)
    x0, y0 = 500_000.0, 4_000_000.0  # the raster's top-left corner (tests.fixtures.UTM_ORIGIN)
    assert frame[frame.class_value == 1].total_bounds == pytest.approx([x0 + 20, y0 - 80, x0 + 80, y0 - 20])
    assert not (tmp_path / "p.partial.gpkg").exists()


def test_nodata_and_a_ring_with_a_hole(tmp_path):
    data = np.zeros((12, 12), np.int16)
    data[2:10, 2:10] = 5
    data[4:8, 4:8] = 0  # the hole
    data[0, :] = -32768  # nodata
    frame, _ = polygonise(tmp_path, data, 2, nodata=-32768)
    ring = frame[frame.class_value == 5].geometry.iloc[0]
    assert len(ring.interiors) == 1 and ring.area == pytest.approx((64 - 16) * 100)
    assert frame[frame.class_value == 0].area.sum() == pytest.approx((144 - 12 - 48) * 100)
    assert -32768 not in set(frame.class_value)


def test_min_area_simplify_and_geographic_units(tmp_path):
    data = np.zeros((30, 30), np.uint8)
    data[5:25, 5:25] = 1
    data[27, 27] = 1  # one pixel: under MIN_AREA
    yy, xx = np.mgrid[:30, :30]
    data[((yy - 15) ** 2 + (xx - 15) ** 2) < 30] = 0  # a round hole: a staircase outline
    options = PolygonOptions("m.tif", "iamap:similarity", {}, min_area=150)
    frame, summary = polygonise(tmp_path, data, 4, at_least(1), options)
    assert summary["POLYGONS"] == 1 and "min" not in frame.columns
    exact = frame.geometry.iloc[0]
    simplified, _ = polygonise(tmp_path, data, 4, at_least(1), PolygonOptions("m.tif", "t", {}, min_area=150,
                                                                              simplify=15), name="s.gpkg")
    assert len(simplified.geometry.iloc[0].interiors[0].coords) < len(exact.interiors[0].coords)
    geographic, summary = polygonise(tmp_path, data, 4, at_least(1), name="g.gpkg", crs="EPSG:4326", res=0.001,
                                     origin=(10.0, 45.0))
    assert summary["AREA_UNIT"] == "degree\u00b2" and geographic.crs.to_epsg() == 4326
    assert area_unit(None) == "pixel\u00b2" and area_unit(CRS.from_epsg(3857)) == "m\u00b2"


def test_nothing_to_outline_writes_an_empty_layer_and_a_bad_extension_is_refused(tmp_path):
    frame, summary = polygonise(tmp_path, np.zeros((5, 5), np.uint8), 2, at_least(1))
    assert summary["POLYGONS"] == 0 and len(frame) == 0 and "class_value" in frame.columns
    with pytest.raises(ParameterError, match="OUTPUT_POLYGONS: out.shp: give a file name ending in .gpkg"):
        polygonise(tmp_path, np.zeros((5, 5), np.uint8), 2, name="out.shp")


def test_array_polygons_are_in_map_coordinates():
    from affine import Affine

    classes = np.ones((4, 6), np.int64)
    keep = np.zeros((4, 6), bool)
    keep[1:3, 2:5] = True
    [(value, polygon)] = array_polygons(classes, keep, Affine(2, 0, 100, 0, -2, 50))
    assert value == 1 and polygon.bounds == (104, 44, 110, 48) and polygon.area == 6 * 4
