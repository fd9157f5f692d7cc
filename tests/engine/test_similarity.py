"""The similarity engine on a generated feature raster with known regions, and on the shared scene."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from shapely.geometry import Point, box

from engine.errors import IamapError, ParameterError
from engine.events import Reporter
from engine.similarity import run_similarity

from ..fixtures import UTM_ORIGIN, regions_raster

X0, Y0 = UTM_ORIGIN


def pixel_centre(row, col, res=10.0):
    return X0 + (col + 0.5) * res, Y0 - (row + 0.5) * res


def write_vector(path, geometries, crs="EPSG:32633"):
    gpd.GeoDataFrame({"id": range(len(geometries))}, geometry=geometries, crs=crs).to_file(path)
    return str(path)


def similarity(tmp_path, raster, template, **params):
    reporter = Reporter()
    outputs = run_similarity({"INPUT": str(raster), "TEMPLATE": template, "OUTPUT": str(tmp_path / "sim.tif"),
                              "OUTPUT_POINTS": str(tmp_path / "used.gpkg"), **params}, reporter)
    with rasterio.open(outputs["OUTPUT"]) as src:
        return src.read(1), src, outputs, reporter


def test_points_in_one_region_are_similar_there_and_not_elsewhere(tmp_path):
    raster, labels = regions_raster(tmp_path / "f.tif", nodata_corner=20)
    points = [Point(*pixel_centre(r, c)) for r, c in [(100, 10), (150, 40), (200, 60)]]  # region 0: cols 0-63
    result, src, outputs, _ = similarity(tmp_path, raster, write_vector(tmp_path / "p.gpkg", points))
    assert result.shape == labels.shape and src.crs.to_epsg() == 32633
    assert np.isnan(result[labels == -1]).all()  # nodata stays nodata
    inside, outside = result[labels == 0], result[labels > 0]
    assert inside.min() > 0.95 and outside.max() < inside.min() - 0.2
    assert outputs["references"] == 3 and len(gpd.read_file(tmp_path / "used.gpkg")) == 3


def test_result_equals_a_plain_numpy_cosine(tmp_path):
    raster, _ = regions_raster(tmp_path / "f.tif", 64, 48, bands=5, noise=0.5)
    points = [Point(*pixel_centre(r, c)) for r, c in [(3, 3), (40, 60), (20, 30)]]
    with rasterio.open(raster) as src:
        data = src.read().reshape(5, -1).T
    refs = np.array([data[3 * 64 + 3], data[40 * 64 + 60], data[20 * 64 + 30]])
    unit = data / np.linalg.norm(data, axis=1, keepdims=True)
    for aggregation in ("mean", "max"):
        result, *_ = similarity(tmp_path, raster, write_vector(tmp_path / "p.gpkg", points), AGGREGATION=aggregation)
        if aggregation == "mean":
            prototype = refs.mean(0) / np.linalg.norm(refs.mean(0))
            expected = unit @ prototype
        else:
            expected = (unit @ (refs / np.linalg.norm(refs, axis=1, keepdims=True)).T).max(1)
        np.testing.assert_allclose(result.ravel(), expected, atol=1e-5)


def test_polygons_in_another_crs_are_sampled_inside(tmp_path):
    raster, labels = regions_raster(tmp_path / "f.tif")
    region = box(X0 + 64 * 10 + 50, Y0 - 2000, X0 + 128 * 10 - 50, Y0 - 500)  # region 1
    wgs84 = gpd.GeoSeries([region], crs="EPSG:32633").to_crs("EPSG:4326").iloc[0]
    result, _, outputs, _ = similarity(tmp_path, raster, write_vector(tmp_path / "poly.gpkg", [wgs84], "EPSG:4326"),
                                       RANDOM_SAMPLES=50)
    assert outputs["references"] == 50
    assert result[labels == 1].mean() > 0.95 and result[labels == 0].max() < 0.8
    used = gpd.read_file(tmp_path / "used.gpkg")
    assert used.crs.to_epsg() == 32633 and used.within(region.buffer(1)).all()


def test_references_outside_are_dropped_with_a_count(tmp_path):
    raster, _ = regions_raster(tmp_path / "f.tif")
    points = [Point(*pixel_centre(10, 10)), Point(X0 - 500, Y0 + 500), Point(X0 + 1e5, Y0)]
    _, _, outputs, reporter = similarity(tmp_path, raster, write_vector(tmp_path / "p.gpkg", points))
    assert outputs["references"] == 1
    assert any("2 reference point(s) outside" in e["message"] for e in reporter.events if e["type"] == "warning")


def test_all_references_outside_is_a_clear_error(tmp_path):
    raster, _ = regions_raster(tmp_path / "f.tif")
    points = [Point(X0 - 500, Y0 + 500)]
    with pytest.raises(IamapError, match="TEMPLATE: none of the 1 reference points lies on a valid pixel"):
        similarity(tmp_path, raster, write_vector(tmp_path / "p.gpkg", points))
    assert not (tmp_path / "sim.tif").exists()


def test_template_shapefile_on_the_sentinel2_scene(tmp_path, assets):
    result, src, outputs, reporter = similarity(tmp_path, assets / "test.tif", str(assets / "template.shp"))
    assert 0 < outputs["references"] < 11
    assert any("outside" in e["message"] for e in reporter.events if e["type"] == "warning")
    finite = result[np.isfinite(result)]
    assert finite.size and finite.min() >= -1.0001 and finite.max() <= 1.0001


def test_random_samples_at_its_maximum_runs_with_progress_while_reading_references(tmp_path):
    raster, labels = regions_raster(tmp_path / "f.tif", 128, 96, bands=4)
    region = box(X0 + 32 * 10, Y0 - 900, X0 + 64 * 10 - 1, Y0 - 50)  # inside region 1 (cols 32-63)
    result, _, outputs, reporter = similarity(tmp_path, raster, write_vector(tmp_path / "poly.gpkg", [region]),
                                              RANDOM_SAMPLES=100_000)
    assert outputs["references"] == 100_000
    assert result[labels == 1].min() > 0.95
    percents = [e["percent"] for e in reporter.events if e["type"] == "progress"]
    assert any(0 < p <= 10 for p in percents) and percents == sorted(percents)  # reading the references
    assert any("Reading the pixels under 100000 reference point(s)" in e.get("message", "") for e in reporter.events)


def test_random_samples_above_its_maximum_is_refused_before_any_work(tmp_path):
    raster, _ = regions_raster(tmp_path / "f.tif", 16, 16)
    with pytest.raises(ParameterError) as info:
        similarity(tmp_path, raster, "missing.gpkg", RANDOM_SAMPLES=100_001)
    assert info.value.parameter == "RANDOM_SAMPLES" and "must be at most 100000 (got 100001)" in str(info.value)
    assert not (tmp_path / "sim.tif").exists()


def test_polygons_of_the_pixels_reaching_the_threshold_need_it(tmp_path):
    raster, labels = regions_raster(tmp_path / "f.tif", nodata_corner=20)
    points = write_vector(tmp_path / "p.gpkg", [Point(*pixel_centre(100, 10))])
    result, _, outputs, _ = similarity(tmp_path, raster, points, THRESHOLD=0.9,
                                       OUTPUT_POLYGONS=str(tmp_path / "similar.gpkg"))
    polygons = gpd.read_file(outputs["OUTPUT_POLYGONS"])
    assert len(polygons) == 1 and polygons.area.iloc[0] == pytest.approx((result >= 0.9).sum() * 100)
    assert (result >= 0.9).sum() == (labels == 0).sum()  # region 0 without its nodata corner
    assert polygons.class_name.iloc[0] == "similarity \u2265 0.9" and polygons.tool.iloc[0] == "iamap:similarity"
    with pytest.raises(ParameterError, match="THRESHOLD: OUTPUT_POLYGONS are the pixels"):
        similarity(tmp_path, raster, points, OUTPUT_POLYGONS=str(tmp_path / "similar.gpkg"))


@pytest.mark.parametrize("shapes, said", [
    ("points", "Reference locations of river (/data/river.shp): 3 point(s)."),
    ("polygon", "Reference locations of river (/data/river.shp): 40 random point(s) drawn in its 1 polygon(s)."),
    ("mixed", "Reference locations of river (/data/river.shp): 3 point(s), and 40 random point(s) drawn in its 1 "
              "polygon(s) and along its 1 line(s)."),
])
def test_the_log_says_what_the_layer_gave_naming_it_as_the_user_chose_it(tmp_path, shapes, said):
    from shapely.geometry import LineString

    raster, _ = regions_raster(tmp_path / "f.tif")
    points = [Point(*pixel_centre(r, c)) for r, c in [(100, 10), (150, 40), (200, 60)]]
    polygon = box(X0 + 700, Y0 - 2000, X0 + 1200, Y0 - 500)
    line = LineString([(X0 + 100, Y0 - 100), (X0 + 600, Y0 - 600)])
    geometries = {"points": points, "polygon": [polygon], "mixed": [*points, polygon, line]}[shapes]
    copy = tmp_path / "processing_abc" / "TEMPLATE.gpkg"
    copy.parent.mkdir()
    _, _, _, reporter = similarity(tmp_path, raster, write_vector(copy, geometries), RANDOM_SAMPLES=40,
                                   LAYER_NAMES={"TEMPLATE": "river (/data/river.shp)"})
    log = [e["message"] for e in reporter.events if e["type"] in ("text", "warning")]
    assert said in log
    assert not any("TEMPLATE.gpkg" in line or "processing_abc" in line for line in log)
    assert shapes != "points" or not any("random" in line for line in log)
