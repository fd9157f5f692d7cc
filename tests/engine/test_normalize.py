"""Pixel scaling before the model: band statistics without nodata, and the model/dataset/none/auto modes."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import rasterio

from engine.errors import IamapError, ParameterError
from engine.normalize import band_statistics, resolve_normalization
from engine.rasters import extent_window

from ..fixtures import write_raster

IMAGENET = SimpleNamespace(name="fake_vit", mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), input_scale=None)
SSL4EO = SimpleNamespace(name="fake_ssl4eo", mean=(0.0,) * 13, std=(1.0,) * 13, input_scale=1e-4)
NO_STATS = SimpleNamespace(name="fake_mae", mean=None, std=None, input_scale=None)


def resolve(path, mode, backbone, bands=None):
    with rasterio.open(path) as src:
        return resolve_normalization(mode, src, bands or list(range(1, src.count + 1)), extent_window(src, None),
                                     backbone)


def rgb8(tmp_path, name="rgb.tif"):
    data = np.stack([np.full((10, 10), v, np.uint8) for v in (10, 20, 30)])
    data[:, 0, 0] = 0
    return write_raster(tmp_path / name, data, nodata=0)


def test_band_statistics_exclude_nodata_and_nan(tmp_path):
    data = np.zeros((2, 4, 5), np.float32)
    data[0] = [[1, 3, 1, 3, 1], [3, 1, 3, 1, 3], [1, 3, 1, 3, 1], [-9999, -9999, -9999, -9999, -9999]]
    data[1] = 5
    data[1, 0, :3] = np.nan
    data[1, 1, 0] = 1000  # a real value: counted
    data[1, 3] = -9999
    path = write_raster(tmp_path / "in.tif", data, nodata=-9999)
    with rasterio.open(path) as src:
        mean, std = band_statistics(src, [1, 2], extent_window(src, None))
    # band 1: eight 1s and seven 3s (the nodata row left out); band 2: eleven 5s and 1000 (NaN and nodata left out)
    np.testing.assert_allclose(mean, [29 / 15, (11 * 5 + 1000) / 12], rtol=1e-6)
    np.testing.assert_allclose(std, [np.sqrt(224) / 15, np.sqrt(11 * 5**2 + 1000**2 - 1055**2 / 12) / np.sqrt(12)],
                               rtol=1e-6)
    assert mean.dtype == std.dtype == np.float32


def test_a_constant_band_gets_std_1_not_a_division_by_zero(tmp_path):
    path = write_raster(tmp_path / "in.tif", np.full((1, 3, 3), 42, np.uint16))
    with rasterio.open(path) as src:
        mean, std = band_statistics(src, [1], extent_window(src, None))
    assert (mean[0], std[0]) == (42, 1)


def test_band_statistics_on_a_large_window_are_measured_on_a_decimated_read(tmp_path):
    data = np.zeros((1, 200, 300), np.float32)
    data[0, :, 150:] = 10
    path = write_raster(tmp_path / "in.tif", data)
    with rasterio.open(path) as src:
        mean, std = band_statistics(src, [1], extent_window(src, None), max_pixels=600)
    np.testing.assert_allclose([mean[0], std[0]], [5, 5], rtol=0.05)  # half 0, half 10, however decimated


def test_an_all_nodata_band_is_an_error_naming_the_band(tmp_path):
    data = np.ones((3, 4, 4), np.float32)
    data[2] = np.nan
    path = write_raster(tmp_path / "in.tif", data, nodata=float("nan"))
    with rasterio.open(path) as src:
        with pytest.raises(IamapError, match=r"^BANDS: band 3 has no valid pixel in the processed extent"):
            band_statistics(src, [1, 2, 3], extent_window(src, None))


def test_an_all_nodata_band_names_a_parameter_to_change(tmp_path):
    data = np.ones((3, 4, 4), np.float32)
    data[2] = np.nan
    path = write_raster(tmp_path / "in.tif", data, nodata=float("nan"))
    with pytest.raises(ParameterError) as info:
        resolve(path, "dataset", NO_STATS)
    assert info.value.parameter == "BANDS" and "band 3 has no valid pixel" in str(info.value)


def test_model_mode_on_8_bit_rgb_scales_to_0_1_with_the_models_statistics(tmp_path):
    norm = resolve(rgb8(tmp_path), "model", IMAGENET)
    assert norm.mode == "model"
    np.testing.assert_allclose(norm.scale, [1 / 255] * 3)
    np.testing.assert_allclose(norm.mean, IMAGENET.mean)
    np.testing.assert_allclose(norm.std, IMAGENET.std)
    assert norm.describe() == ("model: scale [0.003922, 0.003922, 0.003922], mean [0.485, 0.456, 0.406], "
                               "std [0.229, 0.224, 0.225]")


def test_model_mode_uses_the_models_own_input_scale(tmp_path):
    data = np.full((13, 4, 4), 1200, np.uint16)
    norm = resolve(write_raster(tmp_path / "s2.tif", data), "model", SSL4EO)
    np.testing.assert_allclose(norm.scale, [1e-4] * 13)
    assert norm.mean.shape == norm.std.shape == (13,)


def test_dataset_mode_uses_the_band_statistics(tmp_path):
    norm = resolve(rgb8(tmp_path), "dataset", IMAGENET)  # the nodata pixel is left out
    assert norm.mode == "dataset"
    np.testing.assert_allclose(norm.scale, [1, 1, 1])
    np.testing.assert_allclose(norm.mean, [10, 20, 30])
    np.testing.assert_allclose(norm.std, [1, 1, 1])  # constant bands


def test_none_mode_leaves_raw_values(tmp_path):
    norm = resolve(rgb8(tmp_path), "none", IMAGENET)
    assert norm.mode == "none"
    for values, expected in ((norm.scale, 1), (norm.mean, 0), (norm.std, 1)):
        np.testing.assert_array_equal(values, [expected] * 3)


@pytest.mark.parametrize("case, backbone, dtype, bands, expected", [
    ("8-bit RGB with a model that has statistics", IMAGENET, "uint8", 3, "model"),
    ("8-bit but 4 bands", IMAGENET, "uint8", 4, "dataset"),
    ("3 bands but 16-bit", IMAGENET, "uint16", 3, "dataset"),
    ("8-bit RGB, model without statistics", NO_STATS, "uint8", 3, "dataset"),
    ("13 bands for a model with its own input scale", SSL4EO, "uint16", 13, "model"),
    ("12 bands for that model", SSL4EO, "uint16", 12, "dataset"),
])
def test_auto_picks_model_only_for_the_data_the_model_was_trained_on(tmp_path, case, backbone, dtype, bands,
                                                                      expected):
    data = np.random.default_rng(0).integers(1, 200, (bands, 6, 6)).astype(dtype)
    assert resolve(write_raster(tmp_path / "in.tif", data), "auto", backbone).mode == expected, case


def test_unknown_mode_names_normalization(tmp_path):
    with pytest.raises(ParameterError, match=r"^NORMALIZATION: unknown value 'imagenet'; choose one of .*dataset"):
        resolve(rgb8(tmp_path), "imagenet", IMAGENET)


def test_model_mode_without_model_statistics_names_normalization(tmp_path):
    with pytest.raises(ParameterError, match=r"^NORMALIZATION: the model fake_mae publishes no mean/std; use "
                                             r"'dataset'"):
        resolve(rgb8(tmp_path), "model", NO_STATS)


def test_model_mode_on_16_bit_data_names_normalization(tmp_path):
    data = np.full((3, 4, 4), 900, np.uint16)
    with pytest.raises(ParameterError, match=r"^NORMALIZATION: 'model' needs 8-bit input .*bands are uint16; use "
                                             r"'dataset'"):
        resolve(write_raster(tmp_path / "u16.tif", data), "model", IMAGENET)
