"""Applying a pixel-wise function to a raster window strip by strip: values, nodata, georeferencing, band
metadata, the partial name, what ``on_block`` sees, an EXTENT window and many strips."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from engine import rasters
from engine.blockwise import apply_to_raster
from engine.errors import ParameterError
from engine.events import Reporter
from engine.rasters import extent_window

from ..fixtures import UTM_ORIGIN, described, write_raster

X0, Y0 = UTM_ORIGIN


def source_raster(tmp_path, height=30, width=20):
    """3 float32 bands with distinct values; a few pixels invalid in one band only (NaN or the nodata value)."""
    b, r, c = np.indices((3, height, width))
    data = (100 * b + r + c / 100).astype(np.float32)
    data[0, 2, 3] = np.nan
    data[2, 7, 11] = -1
    data[1, 20:22, 15:] = -1
    return write_raster(tmp_path / "in.tif", data, nodata=-1), data


def invalid_mask(data):
    return (~np.isfinite(data) | (data == -1)).any(axis=0)


def sum_and_first(pixels):
    """(n, 3) -> (n, 2): the band sum and twice band 1."""
    return np.stack([pixels.sum(axis=1), 2 * pixels[:, 0]], axis=1)


def apply(tmp_path, extent=None, function=sum_and_first, count=2, dtype="float32", nodata=float("nan"), **kwargs):
    path, data = source_raster(tmp_path)
    reporter = Reporter()
    output = tmp_path / "out.tif"
    with rasterio.open(path) as src:
        window = extent_window(src, extent)
        partial = apply_to_raster(src, [1, 2, 3], window, output, count, dtype, nodata, function, reporter, **kwargs)
        expected_transform = src.window_transform(window)
    with rasterio.open(partial) as out:
        return partial, out.read(), described(out), window, expected_transform, data, reporter


def test_valid_pixels_get_the_function_and_invalid_ones_nodata(tmp_path):
    partial, result, out, window, _, data, _ = apply(tmp_path)
    invalid = invalid_mask(data)
    assert result.shape == (2, 30, 20) and invalid.sum() == 2 + 10
    np.testing.assert_allclose(result[0][~invalid], data.sum(axis=0)[~invalid], rtol=1e-6)
    np.testing.assert_allclose(result[1][~invalid], 2 * data[0][~invalid], rtol=1e-6)
    assert np.isnan(result[:, invalid]).all()


def test_output_has_the_windows_georeferencing_and_the_asked_metadata(tmp_path):
    partial, _, out, _, transform, _, _ = apply(tmp_path, descriptions=("sum", "double"), tags={"METHOD": "test"})
    assert out.crs.to_epsg() == 32633 and out.transform == transform
    assert out.count == 2 and out.dtypes == ("float32", "float32") and np.isnan(out.nodata)
    assert out.descriptions == ("sum", "double") and out.tags["METHOD"] == "test"


def test_only_the_partial_name_is_written(tmp_path):
    partial, *_ = apply(tmp_path)
    assert partial == tmp_path / "out.partial.tif" and partial.exists()
    assert not (tmp_path / "out.tif").exists()  # the caller finalizes


def test_a_stale_partial_file_is_replaced(tmp_path):
    (tmp_path / "out.partial.tif").write_bytes(b"left by a killed run")
    partial, result, *_ = apply(tmp_path)
    assert result.shape == (2, 30, 20)


def test_integer_labels_from_a_one_dimensional_function(tmp_path):
    def label(pixels):
        return (pixels[:, 0] > 20).astype(np.int64)  # (n,) values

    _, result, out, _, _, data, _ = apply(tmp_path, function=label, count=1, dtype="int16", nodata=-32768)
    invalid = invalid_mask(data)
    assert out.dtypes == ("int16",) and out.nodata == -32768
    np.testing.assert_array_equal(result[0][~invalid], (data[0] > 20)[~invalid])
    assert (result[0][invalid] == -32768).all()


def test_on_block_sees_exactly_the_valid_inputs_and_their_outputs(tmp_path, monkeypatch):
    monkeypatch.setattr(rasters, "STRIP_BYTES", 20 * 3 * 4 * 8)  # 8-row strips, 4 rows in apply_to_raster
    seen = []
    _, result, _, _, _, data, reporter = apply(tmp_path, on_block=lambda i, o: seen.append((i.copy(), o.copy())))
    assert len(seen) > 1
    inputs = np.concatenate([i for i, _ in seen])
    outputs = np.concatenate([o for _, o in seen])
    valid = ~invalid_mask(data)
    np.testing.assert_array_equal(inputs, data[:, valid].T)  # row-major, every valid pixel once
    np.testing.assert_array_equal(outputs, sum_and_first(inputs))
    progress = [e["percent"] for e in reporter.events if e["type"] == "progress"]
    assert progress[-1] == 100 and progress == sorted(progress)


def test_a_window_at_an_offset_over_several_strips(tmp_path, monkeypatch):
    monkeypatch.setattr(rasters, "STRIP_BYTES", 12 * 3 * 4 * 6)  # 6-row strips, halved: 3 rows each
    calls = []

    def counted(pixels):
        calls.append(len(pixels))
        return sum_and_first(pixels)

    extent = [X0 + 50, Y0 - 250, X0 + 170, Y0 - 30]  # columns 5-16, rows 3-24: 12 x 22 px
    _, result, out, window, transform, data, _ = apply(tmp_path, extent=extent, function=counted)
    assert (window.col_off, window.row_off, window.width, window.height) == (5, 3, 12, 22)
    assert result.shape == (2, 22, 12) and len(calls) == 8  # ceil(22 / 3) strips
    assert (out.transform.c, out.transform.f) == (X0 + 50, Y0 - 30) and out.transform == transform
    sub = data[:, 3:25, 5:17]
    invalid = invalid_mask(sub)
    assert invalid.sum() == 1 + 4  # (7, 11) of band 3; rows 20-21, columns 15-16 of band 2
    np.testing.assert_allclose(result[0][~invalid], sub.sum(axis=0)[~invalid], rtol=1e-6)
    assert np.isnan(result[:, invalid]).all()


@pytest.mark.parametrize("strip_bytes", [20 * 3 * 4 * 2, 20 * 3 * 4 * 64])
def test_the_result_does_not_depend_on_the_strip_height(tmp_path, monkeypatch, strip_bytes):
    reference = apply(tmp_path)[1]
    monkeypatch.setattr(rasters, "STRIP_BYTES", strip_bytes)
    np.testing.assert_array_equal(apply(tmp_path)[1], reference)


@pytest.mark.parametrize("extent, parameter, where", [(None, "INPUT", "raster"),
                                                      ((X0, Y0 - 100, X0 + 50, Y0), "EXTENT", "selected extent")])
def test_an_output_of_nodata_only_is_refused_and_its_partial_removed(tmp_path, extent, parameter, where):
    data = np.full((3, 30, 20), -1, np.float32)
    if extent:
        data[:, 20:, 10:] = 5  # valid pixels outside the extent only
    path = write_raster(tmp_path / "in.tif", data, nodata=-1)
    with rasterio.open(path) as src, pytest.raises(ParameterError) as info:
        apply_to_raster(src, [1, 2, 3], extent_window(src, extent), tmp_path / "out.tif", 1, "float32",
                        float("nan"), lambda pixels: pixels[:, 0], Reporter())
    assert info.value.parameter == parameter
    assert f"no pixel of the {where} is valid in the selected band(s) 1, 2, 3 (all nodata)" in str(info.value)
    assert not (tmp_path / "out.partial.tif").exists() and not (tmp_path / "out.tif").exists()
