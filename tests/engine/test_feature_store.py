"""The explorer's features: pixels read pixel-major, unit vectors in float16 with the nodata test, the store and
its preview grid whatever the strips and readers."""

from __future__ import annotations

import time

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window

import engine.feature_cache
import engine.feature_store
import engine.rasters
from engine.catalog import OUTPUT_FORMATS
from engine.feature_reading import RawTiles, read_pixels
from engine.feature_store import FeatureStore, unit_vectors
from engine.rasters import open_raster

from ..fixtures import regions_raster


@pytest.mark.parametrize("interleave", ["pixel", "band"])
def test_read_pixels_gives_the_window_pixel_major_in_the_bands_asked(tmp_path, interleave):
    path = tmp_path / "features.tif"
    data = np.random.default_rng(0).normal(size=(6, 40, 300)).astype(np.float32)
    with rasterio.open(path, "w", driver="GTiff", width=300, height=40, count=6, dtype="float32", tiled=True,
                       blockxsize=256, blockysize=16, interleave=interleave, crs="EPSG:32633",
                       transform=from_origin(500000, 4000000, 10, 10)) as dst:
        dst.write(data)
    window = Window(10, 5, 280, 30)
    with open_raster(str(path)) as src:
        pixels = read_pixels(src, [5, 2, 3], window)
        buffer = np.full((32, 280, 3), -1, np.float32)
        filled = read_pixels(src, [5, 2, 3], window, buffer)
    expected = data[[4, 1, 2], 5:35, 10:290].transpose(1, 2, 0)
    assert pixels.shape == (30, 280, 3) and pixels.flags.c_contiguous
    np.testing.assert_array_equal(pixels, expected)
    assert np.shares_memory(filled, buffer) and filled.shape == (30, 280, 3)
    np.testing.assert_array_equal(filled, expected)


def test_unit_vectors_mark_nan_infinite_and_nodata_pixels_invalid_and_zero():
    pixels = np.array([[3, 4, 0], [np.nan, 1, 1], [1, np.inf, 1], [-9, 1, 2], [0, 0, 0], [3e30, 4e30, 0],
                       [1, -9, 2]], np.float32)
    out = np.full((7, 3), 7, np.float16)
    valid = unit_vectors(pixels.copy(), out, np.array([-9, np.nan, np.nan], np.float32))  # scales its input
    # -9 is nodata in band 1 only; a zero vector is valid (similarity 0); huge values overflow float32 squares
    assert valid.tolist() == [True, False, False, False, True, True, True]
    np.testing.assert_allclose(out[[0, 5]].astype(np.float32), [[0.6, 0.8, 0], [0.6, 0.8, 0]], atol=1e-3)
    np.testing.assert_allclose(out[6].astype(np.float32), np.array([1, -9, 2]) / np.sqrt(86), atol=1e-3)
    assert not out[[1, 2, 3, 4]].any()
    assert unit_vectors(pixels[[0, 6]], np.empty((2, 3), np.float16)).all()  # no nodata value: only finiteness counts
    many = np.repeat(pixels, 400, axis=0)  # several chunks of UNIT_CHUNK, each with invalid and huge pixels
    units = np.empty(many.shape, np.float16)
    nodata = np.array([-9, np.nan, np.nan], np.float32)
    assert unit_vectors(many.copy(), units, nodata).tolist() == np.repeat(valid, 400).tolist()
    np.testing.assert_array_equal(units, np.repeat(out, 400, axis=0))


@pytest.mark.parametrize("readers", [1, 2, 3])
def test_store_holds_unit_vectors_valid_pixels_and_a_preview_of_every_second_pixel(tmp_path, monkeypatch, readers):
    path, labels = regions_raster(tmp_path / "features.tif", 64, 48, bands=5, nodata_corner=6)
    monkeypatch.setattr(engine.feature_store, "PREVIEW_PIXELS", 100)
    monkeypatch.setattr(engine.rasters, "STRIP_BYTES", 64 * 5 * 4 * 7)  # 7 rows: strips of 6 (even), 8 of them
    with rasterio.open(path) as src:
        data = src.read().reshape(5, -1).T
    with open_raster(str(path)) as src:
        store = FeatureStore(src, [1, 2, 3, 4, 5], tmp_path, readers)
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


def store_files(store):
    return store.grid.vectors.numpy(), store.valid, store.preview.vectors.numpy(), store.preview.valid


@pytest.mark.parametrize("in_memory", [True, False])
def test_cache_keeps_a_store_that_an_unchanged_raster_reopens_and_a_changed_one_does_not(tmp_path, monkeypatch,
                                                                                         in_memory):
    path, labels = regions_raster(tmp_path / "features.tif", 64, 48, bands=5, nodata_corner=6)
    monkeypatch.setattr(engine.feature_store, "PREVIEW_PIXELS", 100)
    monkeypatch.setattr(engine.feature_cache, "CACHE_MIN_BYTES", 0)
    monkeypatch.setattr(engine.feature_store, "MEMORY_SHARE", 0.5 if in_memory else 0)
    cache = tmp_path / "cache"
    stores = []
    for work in ("a", "b"):
        (tmp_path / work).mkdir()
        with open_raster(str(path)) as src:
            stores.append(FeatureStore(src, [1, 2, 3, 4, 5], tmp_path / work, cache=cache))
            stores[-1].wait_for_cache()  # in memory: written by a background thread
    built, reopened = stores
    assert built.in_memory == in_memory and not built.cached and reopened.cached
    # a memory-mapped store is built in the cache itself: the work folder stays empty either way
    assert [p.name for p in (tmp_path / "a").iterdir()] == [] == [p.name for p in (tmp_path / "b").iterdir()]
    (entry,) = cache.iterdir()
    assert sorted(p.name for p in entry.iterdir()) == ["features.f16", "preview.f16", "preview_valid.npy",
                                                       "store.json", "valid.npy"]
    for mine, stored in zip(store_files(built), store_files(reopened)):
        np.testing.assert_array_equal(mine, stored)
    assert (reopened.preview.height, reopened.preview.width) == (24, 32)
    np.testing.assert_array_equal(reopened.valid, (labels >= 0).ravel())
    with open_raster(str(path)) as src:  # other bands: another store
        other = FeatureStore(src, [1, 2], tmp_path / "a", cache=cache)
        other.wait_for_cache()
        assert not other.cached
    regions_raster(path, 64, 48, bands=5, nodata_corner=6, seed=1)  # rewritten: another fingerprint
    with open_raster(str(path)) as src:
        changed = FeatureStore(src, [1, 2, 3, 4, 5], tmp_path / "a", cache=cache)
        changed.wait_for_cache()
    assert not changed.cached and len(list(cache.iterdir())) == 3
    assert not np.array_equal(changed.grid.vectors.numpy(), built.grid.vectors.numpy())


def test_a_vrt_whose_source_raster_changed_is_not_served_from_the_cache(tmp_path, monkeypatch):
    import rasterio.shutil

    monkeypatch.setattr(engine.feature_cache, "CACHE_MIN_BYTES", 0)
    path, _ = regions_raster(tmp_path / "source.tif", 32, 32, bands=4)
    with open_raster(str(path)) as src:
        rasterio.shutil.copy(src, tmp_path / "view.vrt", driver="VRT")  # the VRT file itself never changes
    stores = []
    for seed in (0, 1):
        regions_raster(path, 32, 32, bands=4, seed=seed)
        (tmp_path / str(seed)).mkdir()
        with open_raster(str(tmp_path / "view.vrt")) as src:
            stores.append(FeatureStore(src, [1, 2, 3, 4], tmp_path / str(seed), cache=tmp_path / "cache"))
            stores[-1].wait_for_cache()
    assert not stores[1].cached
    assert not np.array_equal(stores[0].grid.vectors.numpy(), stores[1].grid.vectors.numpy())


def test_cache_evicts_the_least_recently_used_stores_and_skips_small_rasters(tmp_path, monkeypatch):
    monkeypatch.setattr(engine.feature_cache, "CACHE_MIN_BYTES", 0)
    cache, rasters = tmp_path / "cache", []
    for name in "abc":
        rasters.append(regions_raster(tmp_path / f"{name}.tif", 32, 32, bands=4)[0])
    monkeypatch.setattr(engine.feature_cache, "CACHE_BYTES", 2 * (32 * 32 * 4 * 2 + 32 * 32 + 1000))  # 2 stores

    def open_store(path):
        with open_raster(str(path)) as src:
            store = FeatureStore(src, [1, 2, 3, 4], tmp_path, cache=cache)
        store.wait_for_cache()
        return store

    open_store(rasters[0])
    time.sleep(0.05)
    open_store(rasters[1])
    time.sleep(0.05)
    assert open_store(rasters[0]).cached  # a used again: b is now the least recently used
    time.sleep(0.05)
    open_store(rasters[2])
    assert len(list(cache.iterdir())) == 2
    assert open_store(rasters[0]).cached and open_store(rasters[2]).cached and not open_store(rasters[1]).cached
    monkeypatch.setattr(engine.feature_cache, "CACHE_MIN_BYTES", 256 * 2**20)
    small = tmp_path / "small_cache"
    with open_raster(str(rasters[0])) as src:
        assert not FeatureStore(src, [1, 2, 3, 4], tmp_path, cache=small).cached
    assert not small.exists()


def test_closing_stops_the_cache_being_written_and_removes_its_half(tmp_path, monkeypatch):
    path, _ = regions_raster(tmp_path / "features.tif", 64, 48, bands=5)
    monkeypatch.setattr(engine.feature_cache, "CACHE_MIN_BYTES", 0)
    cache = tmp_path / "cache"
    for started in (False, True):
        with open_raster(str(path)) as src:
            store = FeatureStore(src, [1, 2, 3, 4, 5], tmp_path, cache=cache)
        assert store.in_memory and len(list(cache.iterdir())) == 1  # the half-built store, nothing written yet
        if started:
            store.computing.set()  # a map being computed: the writer waits
            store.start_caching()
        store.close()
        assert list(cache.iterdir()) == []
        assert store.grid.vectors.shape == (48 * 64, 5)  # the store itself stays usable


@pytest.mark.parametrize("output_format", list(OUTPUT_FORMATS))
def test_raw_tiles_read_what_gdal_reads_for_the_encoders_formats_else_none(tmp_path, output_format):
    path = tmp_path / "features.tif"
    data = np.random.default_rng(0).normal(size=(5, 70, 600)).astype(np.float32)
    with rasterio.open(path, "w", width=600, height=70, count=5, dtype="float32", nodata=float("nan"),
                       crs="EPSG:32633", transform=from_origin(500000, 4000000, 10, 10),
                       **OUTPUT_FORMATS[output_format].options) as dst:
        dst.write(data[:, 16:48, :512], window=Window(0, 16, 512, 32))  # sparse: the other blocks never written
    with open_raster(str(path)) as src:
        raw = RawTiles.of(src, [1, 2, 3, 4, 5])
        assert (raw is not None) == (output_format in ("float32", "float16"))  # the uncompressed ones
        assert RawTiles.of(src, [1, 2]) is None  # a subset of the bands: through GDAL
        if raw is None:
            return
        expected = src.read().transpose(1, 2, 0)
        out = np.empty((32, 600, 5), np.float32)
        with open(path, "rb") as f:
            for row, height in ((0, 32), (32, 32), (64, 6)):  # whole blocks, then the last, partial one
                np.testing.assert_array_equal(raw.read(f, row, height, out), expected[row:row + height])
    assert np.isnan(expected[:16]).all() and np.isfinite(expected[16:48, :512]).all()


def test_store_of_a_float16_raster_read_raw_equals_the_one_read_through_gdal(tmp_path, monkeypatch):
    path = tmp_path / "features.tif"
    _, labels = regions_raster(tmp_path / "source.tif", 300, 70, bands=6, nodata_corner=20)
    with rasterio.open(tmp_path / "source.tif") as src:
        profile = dict(src.profile, **OUTPUT_FORMATS["float16"].options)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(src.read())
    monkeypatch.setattr(engine.rasters, "STRIP_BYTES", 300 * 6 * 4 * 40)  # strips of 32 rows: 3 of them
    with open_raster(str(path)) as src:
        raw = FeatureStore(src, list(range(1, 7)), tmp_path)
        monkeypatch.setattr(RawTiles, "of", classmethod(lambda cls, src, bands: None))
        gdal = FeatureStore(src, list(range(1, 7)), tmp_path)
    np.testing.assert_array_equal(raw.grid.vectors.numpy(), gdal.grid.vectors.numpy())
    np.testing.assert_array_equal(raw.valid, (labels >= 0).ravel())


def test_a_store_too_big_for_memory_is_a_memory_mapped_file_of_the_work_folder(tmp_path, monkeypatch):
    path, labels = regions_raster(tmp_path / "features.tif", 64, 48, bands=5, nodata_corner=6)
    with open_raster(str(path)) as src:
        in_memory = FeatureStore(src, [1, 2, 3, 4, 5], tmp_path / "unused")
        monkeypatch.setattr(engine.feature_store, "MEMORY_SHARE", 0)
        mapped = FeatureStore(src, [1, 2, 3, 4, 5], tmp_path)
    assert in_memory.in_memory and not mapped.in_memory and not (tmp_path / "unused").exists()
    stored = np.fromfile(tmp_path / "features.f16", np.float16).reshape(48 * 64, 5)
    np.testing.assert_array_equal(stored, in_memory.grid.vectors.numpy())
    np.testing.assert_array_equal(mapped.grid.vectors.numpy(), stored)
    np.testing.assert_array_equal(mapped.valid, (labels >= 0).ravel())
