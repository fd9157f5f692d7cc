"""Reference points from vector layers and the pixels under them: degenerate shapes named as such, points drawn
where they belong, and pixels read once per raster block rather than once per point."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from rasterio.windows import Window
from shapely.geometry import LineString, Point, Polygon, box

from engine import vectors
from engine.errors import ParameterError
from engine.events import Reporter
from engine.vectors import pixel_values, read_reference_points

from ..fixtures import UTM_ORIGIN, regions_raster

X0, Y0 = UTM_ORIGIN
FLAT_POLYGON = Polygon([(X0, Y0), (X0 + 100, Y0), (X0 + 200, Y0)])  # three points on a line: no area
POINT_LINE = LineString([(X0, Y0), (X0, Y0)])  # no length


def layer(path, geometries, crs="EPSG:32633"):
    gpd.GeoDataFrame({"id": range(len(geometries))}, geometry=geometries, crs=crs).to_file(path)
    return str(path)


@pytest.mark.parametrize("geometries, text", [
    ([FLAT_POLYGON], "TEMPLATE: its 1 polygon(s) have no area, so no random point can be drawn"),
    ([POINT_LINE], "TEMPLATE: its 1 line(s) have no length, so no random point can be drawn"),
    ([FLAT_POLYGON, FLAT_POLYGON, POINT_LINE], "TEMPLATE: its 2 polygon(s) have no area and its 1 line(s) no length"),
])
def test_shapes_without_area_or_length_are_named_not_blamed_on_random_samples(tmp_path, geometries, text):
    with pytest.raises(ParameterError) as info:
        read_reference_points(layer(tmp_path / "t.gpkg", geometries), "EPSG:32633", 500)
    assert info.value.parameter == "TEMPLATE" and str(info.value).startswith(text)
    assert "RANDOM_SAMPLES is 0" not in str(info.value)


def test_a_flat_polygon_beside_points_leaves_the_points_with_a_warning(tmp_path):
    reporter = Reporter()
    points = read_reference_points(layer(tmp_path / "t.gpkg", [FLAT_POLYGON, Point(X0 + 5, Y0 - 5)]), "EPSG:32633",
                                   500, reporter=reporter)
    assert len(points) == 1 and points.source.tolist() == [1]
    assert [e["message"] for e in reporter.events] == ["TEMPLATE: its 1 polygon(s) have no area; only the layer's "
                                                       "points are used."]


def test_random_samples_zero_without_points_names_random_samples(tmp_path):
    with pytest.raises(ParameterError) as info:
        read_reference_points(layer(tmp_path / "t.gpkg", [box(X0, Y0 - 100, X0 + 100, Y0)]), "EPSG:32633", 0)
    assert info.value.parameter == "RANDOM_SAMPLES" and "is 0 and the TEMPLATE layer has no point" in str(info.value)


def test_points_are_drawn_inside_polygons_and_on_lines_in_proportion(tmp_path):
    square = box(X0, Y0 - 1000, X0 + 1000, Y0)  # 1e6 m2
    line = LineString([(X0 + 2000, Y0), (X0 + 2000, Y0 - 500)])  # 500 m: weighted by length against area
    points = read_reference_points(layer(tmp_path / "t.gpkg", [square, line]), "EPSG:32633", 100_000, seed=1)
    assert len(points) == 100_000
    in_square = points[points.source == 0]
    on_line = points[points.source == 1]
    assert in_square.within(square).all() and on_line.distance(line).max() < 1e-6
    assert len(on_line) == pytest.approx(100_000 * 500 / (1e6 + 500), abs=60)


class CountingReads:
    """A raster that counts its ``read`` calls (everything else passes through)."""

    def __init__(self, src):
        self.src, self.reads = src, 0

    def read(self, *args, **kwargs):
        self.reads += 1
        return self.src.read(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.src, name)


def points_at(pixels, transform):
    xs, ys = transform * (np.asarray([c for _, c in pixels]) + 0.5, np.asarray([r for r, _ in pixels]) + 0.5)
    return gpd.GeoDataFrame({"source": range(len(pixels))}, geometry=gpd.points_from_xy(xs, ys), crs="EPSG:32633")


def test_pixel_values_are_those_under_the_points_read_once_per_block(tmp_path):
    raster, labels = regions_raster(tmp_path / "f.tif", 300, 200, bands=6, nodata_corner=20)
    rng = np.random.default_rng(0)
    pixels = list(zip(rng.integers(0, 200, 20_000), rng.integers(0, 300, 20_000)))
    window = Window(30, 10, 250, 180)
    with rasterio.open(raster) as plain:
        everything = plain.read()
        points = points_at(pixels, plain.transform)
        blocks = len(list(plain.block_windows(1)))
        src = CountingReads(plain)
        reporter = Reporter()
        values, used = pixel_values(src, [2, 5, 6], window, points, reporter)
    inside = [(r, c) for r, c in pixels if 10 <= r < 190 and 30 <= c < 280]
    kept = [(r, c) for r, c in inside if labels[r, c] >= 0]
    assert len(used) == len(values) == len(kept)
    np.testing.assert_array_equal(values, np.array([everything[[1, 4, 5], r, c] for r, c in kept]))
    assert 0 < src.reads <= blocks  # not one read per point
    warning = [e["message"] for e in reporter.events if e["type"] == "warning"]
    assert warning == [f"TEMPLATE: {len(pixels) - len(inside)} reference point(s) outside the raster extent and "
                       f"{len(inside) - len(kept)} on nodata were dropped; {len(kept)} used."]
    percents = [e["percent"] for e in reporter.events if e["type"] == "progress"]
    assert percents and percents == sorted(percents) and percents[-1] == 100


def test_a_block_larger_than_read_bytes_is_read_in_bounded_pieces(tmp_path, monkeypatch):
    data = np.arange(4 * 64 * 64, dtype="float32").reshape(4, 64, 64)
    path = tmp_path / "strip.tif"
    with rasterio.open(path, "w", driver="GTiff", width=64, height=64, count=4, dtype="float32", crs="EPSG:32633",
                       transform=rasterio.transform.from_origin(X0, Y0, 10, 10), tiled=True, blockxsize=64,
                       blockysize=64) as dst:
        dst.write(data)
    monkeypatch.setattr(vectors, "READ_BYTES", 4 * 4 * 64 * 8)  # 8 rows of 4 bands
    pixels = [(r, c) for r in range(0, 64, 3) for c in range(0, 64, 5)]
    with rasterio.open(path) as plain:
        assert plain.block_shapes[0] == (64, 64)  # the whole raster is one block
        src = CountingReads(plain)
        values, _ = pixel_values(src, [1, 2, 3, 4], Window(0, 0, 64, 64), points_at(pixels, plain.transform))
    np.testing.assert_array_equal(values, np.array([data[:, r, c] for r, c in pixels]))
    assert src.reads == 8  # 64 rows in pieces of 8


def test_a_raster_without_crs_is_named_when_a_layer_must_be_placed_on_it(tmp_path):
    path = tmp_path / "p.gpkg"
    gpd.GeoDataFrame({"label": ["a"]}, geometry=[Point(UTM_ORIGIN)], crs="EPSG:32633").to_file(path)
    with pytest.raises(ParameterError) as info:
        vectors.read_layer(str(path), None, "TEMPLATE")
    assert info.value.parameter == "INPUT"
    assert "the raster has no CRS, so the features of TEMPLATE cannot be placed on it" in str(info.value)
