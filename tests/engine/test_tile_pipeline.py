"""The encoder's tile reader and batch step, on small generated rasters."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch

from engine.models import load_backbone
from engine.normalize import Normalization
from engine.rasters import extent_window
from engine.tile_pipeline import TileEncoder, TileReader, cell_validity, create_feature_raster
from engine.tiling import TileGrid

from ..fixtures import write_raster


def test_the_reader_queues_every_tile_in_order_in_its_own_type_with_a_mask_only_where_needed(tmp_path):
    data = np.full((1, 64, 96), 5, "uint16")
    data[:, :32, :32] = 0  # the first tile is all nodata
    data[:, 40, 70] = 0  # one nodata pixel in the last tile
    path = write_raster(tmp_path / "in.tif", data, nodata=0)
    grid = TileGrid.create(96, 64, 32, 32, 2, 2)
    with rasterio.open(path) as src:
        window = extent_window(src, None)
    reader = TileReader(str(path), {}, [1], window, grid, first_row=0, prefetch_tiles=2)
    reader.start()
    items = []
    while (item := reader.queue.get()) is not None:
        items.append(item)
    assert [(row, col) for row, col, _, _ in items] == [(r, c) for r in range(2) for c in range(3)]
    assert items[0][2] is None and not items[0][3].any()
    assert items[1][2].shape == (1, 32, 32) and items[1][2].dtype == np.uint16 and (items[1][2] == 5).all()
    assert items[1][3] is None  # every pixel valid: no mask at all
    mask = items[5][3]
    assert mask.shape == (1, 32, 32) and mask.sum() == 32 * 32 - 1 and not mask[0, 8, 6]


def test_a_tile_past_the_raster_edge_is_masked_where_it_is_padded(tmp_path):
    path = write_raster(tmp_path / "in.tif", np.ones((2, 40, 40), "uint8"))  # no nodata value
    grid = TileGrid.create(40, 40, 32, 32, 2, 2)
    with rasterio.open(path) as src:
        window = extent_window(src, None)
    reader = TileReader(str(path), {}, [1, 2], window, grid, first_row=0, prefetch_tiles=2)
    reader.start()
    items = []
    while (item := reader.queue.get()) is not None:
        items.append(item)
    assert items[0][3] is None
    edge = items[3][3]  # 8 x 8 pixels of the raster in the corner tile, the rest padding
    assert edge.shape == (2, 32, 32) and edge[:, :8, :8].all() and edge.sum() == 2 * 64


@pytest.mark.parametrize("size, grid_h, grid_w", [(32, 2, 2), (224, 14, 14), (100, 14, 14), (50, 3, 7)])
def test_cell_validity_is_adaptive_average_pooling_of_the_valid_pixels(size, grid_h, grid_w):
    from torch.nn import functional

    rng = np.random.default_rng(size)
    valid = rng.random((3, size, size)) < 0.3  # about 66 % of pixels have a valid band: cells either way
    valid[:, : size // 3] = False
    pooled = functional.adaptive_avg_pool2d(torch.from_numpy(valid.any(0)).float()[None, None], (grid_h, grid_w))[0, 0]
    np.testing.assert_array_equal(cell_validity(valid, grid_h, grid_w), (pooled >= 0.5).numpy())


def test_a_resumed_reader_starts_at_its_first_tile_row(tmp_path):
    path = write_raster(tmp_path / "in.tif", np.ones((1, 96, 32), "uint8"))
    grid = TileGrid.create(32, 96, 32, 32, 2, 2)
    with rasterio.open(path) as src:
        window = extent_window(src, None)
    reader = TileReader(str(path), {}, [1], window, grid, first_row=2, prefetch_tiles=2)
    reader.start()
    assert reader.queue.get()[:2] == (2, 0) and reader.queue.get() is None


def test_the_batch_step_gives_features_on_the_token_grid_and_cell_validity():
    backbone = load_backbone("", "vit_tiny_patch16_224", pretrained=False, in_chans=2)
    grid = TileGrid.create(112, 112, 112, 112, *backbone.grid)
    norm = Normalization("none", np.ones(2, np.float32), np.zeros(2, np.float32), np.ones(2, np.float32))
    encoder = TileEncoder(backbone, torch.device("cpu"), "fp32", norm, 112, grid)
    tile = np.random.default_rng(0).random((2, 112, 112), dtype=np.float32)
    valid = np.ones((2, 112, 112), bool)
    valid[:, :, :56] = False  # the left half is nodata
    features, cell_valid = encoder([tile, tile], [valid, np.ones_like(valid)])
    assert features.shape == (2, 192, 14, 14) and np.isfinite(features).all()
    assert cell_valid[0][:, :7].sum() == 0 and cell_valid[0][:, 7:].all() and cell_valid[1].all()


def test_the_feature_raster_is_created_empty_on_the_output_grid(tmp_path):
    from affine import Affine

    backbone = load_backbone("", "vit_tiny_patch16_224", pretrained=False, in_chans=3)
    grid = TileGrid.create(300, 200, 224, 224, *backbone.grid)

    class Params:
        SIZE, STRIDE, MERGE_METHOD, OUTPUT_FORMAT = 224, 224, "average", "float32"

    record = {"bands": [1, 2, 3], "precision": "fp32", "input": {"path": "in.tif"}}
    create_feature_raster(tmp_path / "f.tif", grid, backbone, "EPSG:32633", Affine(10, 0, 5e5, 0, -10, 4e6), record,
                          Params())
    with rasterio.open(tmp_path / "f.tif") as dst:
        assert (dst.width, dst.height, dst.count) == (grid.out_width, grid.out_height, 192)
        assert dst.transform == Affine(160, 0, 5e5, 0, -160, 4e6) and np.isnan(dst.nodata)
        assert dst.tags()["MODEL"] == "vit_tiny_patch16_224" and dst.descriptions[0] == "feature 1"
