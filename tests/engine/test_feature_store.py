"""The explorer's features: strips read ahead in order, unit vectors in float16, the preview grid."""

from __future__ import annotations

import numpy as np
import rasterio
from rasterio.windows import Window

import engine.feature_store
import engine.rasters
from engine.feature_store import FeatureStore, read_ahead
from engine.rasters import iter_strips, open_raster

from ..fixtures import regions_raster


def test_read_ahead_gives_the_strips_of_iter_strips_in_order(tmp_path, monkeypatch):
    path, _ = regions_raster(tmp_path / "features.tif", nodata_corner=20)
    monkeypatch.setattr(engine.rasters, "STRIP_BYTES", 256 * 8 * 4 * 10)  # 10 rows a strip: 26 strips
    with open_raster(str(path)) as src:
        bands, window = list(range(1, 9)), Window(0, 0, 256, 256)
        expected = list(iter_strips(src, bands, window))
        for readers in (1, 2, 3):
            strips = list(read_ahead(src, bands, window, readers))
            assert [row for row, *_ in strips] == list(range(0, 256, 10))
            for (_, pixels, valid), (_, want_pixels, want_valid) in zip(strips, expected):
                np.testing.assert_array_equal(pixels, want_pixels)
                np.testing.assert_array_equal(valid, want_valid)
        assert not src.closed  # the caller's handle stays open; the readers' own are closed


def test_store_holds_unit_vectors_valid_pixels_and_a_preview_of_every_second_pixel(tmp_path, monkeypatch):
    path, labels = regions_raster(tmp_path / "features.tif", 64, 48, bands=5, nodata_corner=6)
    monkeypatch.setattr(engine.feature_store, "PREVIEW_PIXELS", 100)
    with rasterio.open(path) as src:
        data = src.read().reshape(5, -1).T
    with open_raster(str(path)) as src:
        store = FeatureStore(src, [1, 2, 3, 4, 5], tmp_path)
    vectors = store.grid.vectors.numpy()
    assert vectors.dtype == np.float16 and vectors.shape == (48 * 64, 5)
    np.testing.assert_array_equal(store.valid, (labels >= 0).ravel())
    unit = data / np.linalg.norm(data, axis=1, keepdims=True)
    np.testing.assert_allclose(vectors[store.valid], unit[store.valid], atol=1e-3)
    assert not vectors[~store.valid].any()  # nodata pixels are zero vectors, masked in every map
    preview = store.preview
    assert (preview.height, preview.width) == (24, 32) and preview.transform.a == 2 * store.transform.a
    np.testing.assert_array_equal(preview.vectors.numpy().reshape(24, 32, 5),
                                  vectors.reshape(48, 64, 5)[::2, ::2])
    np.testing.assert_array_equal(preview.valid, (labels >= 0)[::2, ::2].ravel())
