"""Pixels under labelled features: a point's pixel, a polygon's pixels (capped, seeded; a sub-pixel polygon
its one pixel), a line's pixels, features outside the raster or on nodata counted, fields checked."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from shapely.geometry import LineString, Point

from engine.errors import ParameterError
from engine.events import Reporter
from engine.labelled_samples import NO_LABEL, ON_NODATA, OUTSIDE, read_labelled_pixels
from engine.rasters import extent_window

from ..fixtures import pixel_centres, square, write_raster


@pytest.fixture
def raster(tmp_path):
    """40 x 50 pixels of 10 m, 2 bands: band 1 = row, band 2 = column; the top-left 5 x 5 pixels are nodata."""
    rows, cols = np.mgrid[0:40, 0:50].astype(np.float32)
    data = np.stack([rows, cols])
    data[:, :5, :5] = np.nan
    return write_raster(tmp_path / "r.tif", data, nodata=float("nan"))


def read(raster, path, per_feature=1000, seed=0, extent=None, **kwargs):
    reporter = Reporter()
    with rasterio.open(raster) as src:
        sample = read_labelled_pixels(str(path), src, [1, 2], extent_window(src, extent), "label", per_feature,
                                      seed, reporter=reporter, **kwargs)
    return sample, reporter


def layer(tmp_path, geometries, labels, name="l.gpkg", crs="EPSG:32633", **columns):
    path = tmp_path / name
    gpd.GeoDataFrame({"label": labels, **columns}, geometry=geometries, crs="EPSG:32633").to_crs(crs).to_file(path)
    return path


def centre(raster, row, col):
    (x,), (y,) = pixel_centres(raster, np.array([row]), np.array([col]))
    return x, y


def test_points_polygons_and_lines_give_their_pixels(tmp_path, raster):
    cx, cy = centre(raster, 30, 30)
    path = layer(tmp_path, [Point(*centre(raster, 10, 20)), square(cx, cy, 15),
                            LineString([(cx - 200, cy), (cx - 100, cy)])], ["p", "q", "r"], crs="EPSG:4326")
    sample, reporter = read(raster, path)
    assert sample.values[sample.features == 0].tolist() == [[10, 20]]
    polygon = sample.values[sample.features == 1]  # a 30 m square around a pixel centre holds 3 x 3 centres
    assert sorted(map(tuple, polygon.tolist())) == [(r, c) for r in (29, 30, 31) for c in (29, 30, 31)]
    line = sample.values[sample.features == 2]  # from x 105 to 205 m along row 30's centre line
    assert sorted(line[:, 1].tolist()) == list(range(10, 21)) and set(line[:, 0]) == {30}
    assert list(sample.labels[sample.features == 1]) == ["q"] * 9 and sample.features_used == 3
    assert "3 labelled feature(s) (1 point(s), 1 polygon(s), 1 linestring(s)) give 21 pixel(s)." in \
        reporter.events[-1]["message"]


def test_polygons_are_capped_at_a_seeded_random_draw_and_tiny_ones_give_one_pixel(tmp_path, raster):
    cx, cy = centre(raster, 20, 25)
    path = layer(tmp_path, [square(cx, cy, 95), square(*centre(raster, 8, 8), 2)], ["big", "tiny"])
    first, _ = read(raster, path, per_feature=50, seed=1)
    again, _ = read(raster, path, per_feature=50, seed=1)
    other, _ = read(raster, path, per_feature=50, seed=2)
    assert (first.features == 0).sum() == 50 and first.values[first.features == 1].tolist() == [[8, 8]]
    np.testing.assert_array_equal(first.values, again.values)
    assert not np.array_equal(first.values, other.values)
    everything, _ = read(raster, path)
    assert (everything.features == 0).sum() == 19 * 19  # the pixel centres of the 190 m square


def test_left_out_features_are_counted_by_reason(tmp_path, raster):
    x, y = centre(raster, 20, 20)
    path = layer(tmp_path, [Point(x, y), Point(x + 1e4, y), Point(*centre(raster, 2, 2)), Point(x, y - 20)],
                 ["a", "b", "c", None])
    sample, reporter = read(raster, path)
    assert sample.dropped == {NO_LABEL: 1, OUTSIDE: 1, ON_NODATA: 1} and sample.features_used == 1
    assert reporter.events[-1]["type"] == "warning"
    assert "1 feature(s) without a label, 1 feature(s) outside the raster or EXTENT, 1 feature(s) only on nodata " \
           "pixels were left out" in reporter.events[-1]["message"]


def test_extent_limits_the_pixels_and_positions_are_relative_to_it(tmp_path, raster):
    inside, outside = centre(raster, 30, 40), centre(raster, 5, 10)
    path = layer(tmp_path, [Point(*inside), Point(*outside)], ["in", "out"])
    with rasterio.open(raster) as src:
        left, top = src.transform * (30, 20)
        right, bottom = src.transform * (50, 40)
    sample, _ = read(raster, path, extent=[left, bottom, right, top])
    assert sample.values.tolist() == [[30, 40]] and sample.dropped == {OUTSIDE: 1}


def test_missing_fields_and_unlabelled_layers_are_named(tmp_path, raster):
    path = layer(tmp_path, [Point(*centre(raster, 20, 20))], ["a"], zone=["z"])
    with pytest.raises(ParameterError, match="GT_COL: the TEMPLATE layer l.gpkg has no field 'kind'; its fields are: "
                                             "label, zone"):
        with rasterio.open(raster) as src:
            read_labelled_pixels(str(path), src, [1, 2], extent_window(src, None), "kind", 10, 0)
    with pytest.raises(ParameterError, match="FOLD_COL: the TEMPLATE layer l.gpkg has no field 'fold'"):
        read(raster, path, fold_field="fold")
    empty = layer(tmp_path, [Point(*centre(raster, 20, 20))], [None], "none.gpkg")
    with pytest.raises(ParameterError, match="GT_COL: no feature of none.gpkg has a value in 'label'"):
        read(raster, empty)


def test_pixels_under_overlapping_features_that_disagree_are_left_out_and_counted(tmp_path, raster):
    (xa, ya), (xc, yc) = centre(raster, 20, 14), centre(raster, 20, 38)
    # 9 x 9 pixel squares: "a" and "b" overlap over 4 columns (36 pixels), "c" apart; a second "a" over the first
    # (the same label twice is no conflict)
    squares = [square(xa, ya, 45), square(xa + 50, ya, 45), square(xc, yc, 45), square(xa, ya, 45)]
    sample, reporter = read(raster, layer(tmp_path, squares, ["a", "b", "c", "a"]))
    warnings = [e["message"] for e in reporter.events if e["type"] == "warning"]
    # 36 pixels of "b", and 36 of each "a": 108 pixels of 3 features
    assert warnings == ["TEMPLATE: 108 pixel(s) of 3 feature(s) lie under features of different labels in 'label' "
                        "(overlapping features that disagree) and were left out: a pixel cannot be both."]
    assert len(sample.values) == 4 * 81 - 108 and sample.features_used == 4
    assert dict(zip(*np.unique(sample.labels, return_counts=True))) == {"a": 2 * 45, "b": 45, "c": 81}
    assert not np.isin(sample.values[sample.labels == "b", 1], sample.values[sample.labels == "a", 1]).any()
    with pytest.raises(ParameterError) as info:  # drawn 5 of 81 pixels, each square: every one is in both
        read(raster, layer(tmp_path, squares[:1] * 2, ["a", "b"], "same.gpkg"), per_feature=5)
    assert info.value.parameter == "TEMPLATE"
    assert "every one of its 10 pixel(s) lies under features of different labels in 'label'" in str(info.value)
