"""Random samples of valid pixels: only valid pixels, the right size, uniform, seeded, strip-independent."""

from __future__ import annotations

import numpy as np
import rasterio

from engine import rasters
from engine.rasters import extent_window
from engine.sampling import RunningSample, sample_pixels

from ..fixtures import random_raster, regions_raster


def draw(path, size, seed=0, bands=None):
    with rasterio.open(path) as src:
        bands = bands or list(range(1, src.count + 1))
        return sample_pixels(src, bands, extent_window(src, None), size, seed), src.read(bands)


def test_sample_holds_only_valid_pixels_with_their_values(tmp_path):
    path, labels = regions_raster(tmp_path / "r.tif", 64, 48, nodata_corner=20)
    sample, data = draw(path, 500)
    assert sample.values.shape == (500, 8) and sample.valid_pixels == 64 * 48 - 400
    assert np.all(np.diff(sample.positions) > 0)  # sorted, no pixel twice
    rows, cols = np.divmod(sample.positions, 64)
    assert np.all(labels[rows, cols] >= 0)  # never in the NaN corner
    np.testing.assert_array_equal(sample.values, data[:, rows, cols].T)


def test_integer_nodata_is_excluded_and_all_pixels_come_when_fewer_than_asked(tmp_path):
    path = random_raster(tmp_path / "u8.tif", 30, 20, bands=2, nodata=0)
    with rasterio.open(path, "r+") as dst:
        band = dst.read(2)
        band[:5] = 0  # 150 pixels nodata in band 2 only: invalid for a sample of both bands
        dst.write(band, 2)
    sample, _ = draw(path, 10_000)
    assert sample.valid_pixels == 600 - 150 and len(sample.values) == 450
    assert sample.positions.min() == 150
    only_band_1, _ = draw(path, 10_000, bands=[1])
    assert len(only_band_1.values) == 600
    every, _ = draw(path, 10**12)  # a SAMPLE_SIZE far beyond the raster: its pixels, not an allocation of 10**12
    assert len(every.values) == 450 and np.array_equal(every.positions, sample.positions)


def test_same_seed_same_sample_whatever_the_strip_height(tmp_path, monkeypatch):
    path, _ = regions_raster(tmp_path / "r.tif", 80, 80)
    first, _ = draw(path, 300, seed=7)
    monkeypatch.setattr(rasters, "STRIP_BYTES", 80 * 8 * 4 * 3)  # 3-row strips instead of the whole raster
    again, _ = draw(path, 300, seed=7)
    other, _ = draw(path, 300, seed=8)
    np.testing.assert_array_equal(first.positions, again.positions)
    assert len(np.intersect1d(first.positions, other.positions)) < 100


def test_sample_is_uniform_over_rows_and_columns(tmp_path, monkeypatch):
    monkeypatch.setattr(rasters, "STRIP_BYTES", 200 * 8 * 4 * 5)  # many strips: the reservoir is compacted often
    path, _ = regions_raster(tmp_path / "r.tif", 200, 200)
    sample, _ = draw(path, 4000, seed=1)
    rows, cols = np.divmod(sample.positions, 200)
    for coordinate in (rows, cols):  # each tenth of the raster gets its tenth of the sample (+- 5 sigma)
        counts = np.bincount(coordinate // 20, minlength=10)
        assert np.all(np.abs(counts - 400) < 5 * np.sqrt(400)), counts


def test_running_sample_keeps_about_the_asked_share():
    running = RunningSample(1000, 100_000, seed=0)
    for _ in range(100):
        block = np.arange(1000, dtype=np.float32)[:, None]
        running.add(block, block[:, 0])
    inputs, outputs = running.arrays()
    assert 850 < len(inputs) < 1150 and np.array_equal(inputs[:, 0], outputs)
