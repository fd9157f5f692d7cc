"""The change engine on generated dates with one changed region, and on the bundled sample encoded by the tool."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import rasterio

from engine.change import otsu_threshold, pixel_change, run_change
from engine.errors import ParameterError
from engine.events import NULL_REPORTER, Reporter

from ..conftest import REPO
from ..fixtures import change_scene, iou, reprojected, write_raster


class Collected(Reporter):
    def __init__(self):
        super().__init__(None)
        self.messages = []

    def emit(self, event):
        if event["type"] in ("text", "warning"):
            self.messages.append(event["message"])


def change(tmp_path, first, later, name="c", reporter=None, **params):
    outputs = run_change({"INPUT": str(first), "LATER": [str(p) for p in later],
                          "OUTPUT": str(tmp_path / f"{name}.tif"), "OUTPUT_MASK": str(tmp_path / f"{name}_mask.tif"),
                          "OUTPUT_POLYGONS": str(tmp_path / f"{name}.gpkg"), **params}, reporter or NULL_REPORTER)
    with rasterio.open(outputs["OUTPUT"]) as src:
        values, profile = src.read(), src.profile
    with rasterio.open(outputs["OUTPUT_MASK"]) as src:
        mask = src.read(1)
    return outputs, values, profile, mask, gpd.read_file(outputs["OUTPUT_POLYGONS"])


def test_the_changed_region_is_found_and_its_polygon_has_the_mask_area(tmp_path):
    first, second, truth = change_scene(tmp_path)
    reporter = Collected()
    outputs, values, profile, mask, polygons = change(tmp_path, first, [second], reporter=reporter)
    assert iou(mask == 1, truth) >= 0.8
    assert np.nanmax(values[0][~truth]) < outputs["THRESHOLD_USED"] < np.nanmin(values[0][truth])
    assert np.nanmax(values[0][~truth]) < 0.05  # unchanged land covers stay low
    assert profile["dtype"] == "float32" and profile["count"] == 1 and np.isnan(profile["nodata"])
    assert outputs["CHANGED_PIXELS"] == truth.sum() and outputs["CHANGED_AREA"] == truth.sum() * 100
    assert len(polygons) == 1 and polygons.area.sum() == pytest.approx(outputs["CHANGED_AREA"], rel=0.01)
    assert polygons.class_name.iloc[0] == "change to date2" and polygons.tool.iloc[0] == "iamap:change"
    assert any(m.startswith("Automatic threshold (Otsu's method") for m in reporter.messages)
    record = json.loads((tmp_path / "c.iamap.json").read_text())
    assert record["tool"] == "change" and record["threshold"] == outputs["THRESHOLD_USED"]


def test_a_second_date_on_another_crs_and_resolution_gives_the_same_answer(tmp_path):
    first, second, truth = change_scene(tmp_path)
    moved = reprojected(second, tmp_path / "date2_3857.tif", "EPSG:3857", 7.0)
    reporter = Collected()
    outputs, values, profile, mask, polygons = change(tmp_path, first, [moved], reporter=reporter)
    assert profile["crs"].to_epsg() == 32633 and profile["transform"].a == 10  # the first date's grid
    assert iou(mask == 1, truth) >= 0.8
    assert polygons.area.sum() == pytest.approx(outputs["CHANGED_AREA"], rel=0.01)
    assert any("reprojected onto the first date's grid" in m for m in reporter.messages)


def test_only_the_overlap_is_compared_and_nodata_stays_nodata(tmp_path):
    first, second, truth = change_scene(tmp_path)
    with rasterio.open(second) as src:
        data = src.read()
    data[:, :, :20] = np.nan
    part = write_raster(tmp_path / "part.tif", data[:, 10:, :], nodata=float("nan"), origin=(500_000.0, 3_999_900.0))
    outputs, values, profile, mask, _ = change(tmp_path, first, [part], THRESHOLD=0.5)
    assert values.shape == (1, 118, 160) and profile["transform"].f == 3_999_900.0  # 10 rows fewer: the overlap
    assert np.isnan(values[0, :, :20]).all() and (mask[:, :20] == 255).all()
    assert outputs["THRESHOLD_USED"] == 0.5 and iou(mask == 1, truth[10:]) >= 0.8


def test_several_dates_give_one_band_each_and_the_date_of_largest_change(tmp_path):
    first, second, truth = change_scene(tmp_path)
    outputs, values, _, mask, polygons = change(tmp_path, first, [first, second], OUTPUT_DATE=str(tmp_path / "d.tif"))
    assert values.shape[0] == 2 and np.nanmax(values[0]) < 1e-5  # the first date against itself
    with rasterio.open(outputs["OUTPUT_DATE"]) as src:
        date = src.read(1)
    assert (date[truth] == 2).all() and (mask[truth] == 1).all() and (mask[~truth] == 0).all()
    assert list(polygons.class_value) == [1] and polygons.class_name.iloc[0] == "change to any of date1, date2"


def test_features_of_another_band_count_or_backbone_are_refused(tmp_path):
    first, second, _ = change_scene(tmp_path)
    (tmp_path / "few").mkdir()
    fewer, _, _ = change_scene(tmp_path / "few", bands=8)
    with pytest.raises(ParameterError, match="LATER: date1.tif has 8 band.*same backbone"):
        change(tmp_path, first, [fewer])
    for path, model in ((first, "vit_small_patch16_224"), (second, "vit_base_patch16_224")):
        path.with_name(f"{path.stem}.iamap.json").write_text(json.dumps({"tool": "encoder", "model": model,
                                                                         "weights": "pretrained"}))
    with pytest.raises(ParameterError, match="LATER: date2.tif was encoded by vit_base_patch16_224 .*different "
                                             "backbones"):
        change(tmp_path, first, [second])
    assert not (tmp_path / "c.tif").exists()


def test_no_later_date_and_a_bad_polygon_file_are_refused(tmp_path):
    first, _, _ = change_scene(tmp_path)
    with pytest.raises(ParameterError, match="LATER: no later date"):
        run_change({"INPUT": str(first), "LATER": [], "OUTPUT": str(tmp_path / "c.tif")}, NULL_REPORTER)
    with pytest.raises(ParameterError, match="OUTPUT_POLYGONS: c.shp"):
        run_change({"INPUT": str(first), "LATER": [str(first)], "OUTPUT": str(tmp_path / "c.tif"),
                    "OUTPUT_POLYGONS": str(tmp_path / "c.shp")}, NULL_REPORTER)


def test_pixel_change_and_otsu():
    a = np.array([[1, 0], [1, 1], [1, 0]], np.float32)
    b = np.array([[1, 0], [-1, -1], [0, 1]], np.float32)
    assert pixel_change(a, b) == pytest.approx([0, 2, 1])
    histogram = np.zeros(2048, np.int64)
    histogram[10], histogram[1000] = 900, 100
    assert 10 / 1024 < otsu_threshold(histogram, NULL_REPORTER) < 1000 / 1024


def test_the_sample_encoded_by_the_tool_finds_a_region_of_new_texture(tmp_path):
    sample = REPO / "docs" / "sample" / "sample_rgb.tif"
    with rasterio.open(sample) as src:
        data, profile = src.read(), src.profile
    yy, xx = np.mgrid[128:320, 160:352]
    data[:, 128:320, 160:352] = np.where(((yy // 4 + xx // 4) % 2)[None], 230, 30)  # a checkerboard field
    later = tmp_path / "later.tif"
    with rasterio.open(later, "w", **profile) as dst:
        dst.write(data)
    outputs, values, profile, mask, polygons = change(
        tmp_path, sample, [later], ENCODE=True, BACKBONE_NAME="vit_tiny_patch16_224", PRETRAINED=False)
    truth = np.zeros(mask.shape, bool)
    truth[8:20, 10:22] = True  # the field on the feature grid (16 input pixels per feature pixel)
    assert profile["transform"].a == 160 and iou(mask == 1, truth) >= 0.8
    assert len(polygons) == 1 and polygons.area.sum() == pytest.approx(outputs["CHANGED_AREA"], rel=0.01)
    assert sorted(p.name for p in (tmp_path / "c_features").glob("*.tif")) == ["date0_sample_rgb.tif",
                                                                              "date1_later.tif"]

