"""The encoder engine on generated rasters and the shared Sentinel-2 scene."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio

from engine import encoder as encode_module
from engine import models
from engine.encoder import run_encoder
from engine.errors import IamapError, ModelLoadError, ParameterError
from engine.events import Reporter

from ..fixtures import Interrupt, interrupt_after, random_raster, write_raster

TINY = "vit_tiny_patch16_224"  # 192 features, 14x14 cells per 224 px tile


def encode(tmp_path, input_path, name="out.tif", **params):
    reporter = Reporter()
    params = {"INPUT": str(input_path), "OUTPUT": str(tmp_path / name), "BACKBONE_NAME": TINY, "PRETRAINED": False,
              "PRECISION": "fp32", **params}
    outputs = run_encoder(params, reporter)
    return outputs, reporter


def read(path):
    with rasterio.open(path) as src:
        return src.read(), src.profile, src.tags()


def test_output_grid_is_the_feature_grid_aligned_with_the_input(tmp_path):
    data = np.random.default_rng(1).integers(1, 250, (3, 500, 700)).astype("uint8")
    data[:, :160, :160] = 0  # a nodata corner: 10 x 10 feature cells
    path = write_raster(tmp_path / "in.tif", data, nodata=0)
    outputs, reporter = encode(tmp_path, path)
    features, profile, tags = read(outputs["OUTPUT"])
    assert features.shape == (192, 32, 44)  # ceil(500 / 16), ceil(700 / 16)
    assert profile["crs"].to_epsg() == 32633 and profile["dtype"] == "float32"
    assert tuple(profile["transform"])[:6] == (160.0, 0.0, 500_000.0, 0.0, -160.0, 4_000_000.0)
    assert np.isnan(profile["nodata"])
    assert np.isnan(features[:, :10, :10]).all()  # nodata stays nodata
    # the last row has 4 of its 16 pixel rows inside the raster, the last column 12 of 16, the corner cell 4 x 12:
    # computed from them (no nodata notch at the edges); the grid hangs over the input by less than one cell
    assert np.isfinite(features[:, 10:, 10:]).all() and np.isfinite(features[:, 10:, :]).all()
    assert 500 < 32 * 16 < 500 + 16 and 700 < 44 * 16 < 700 + 16
    assert tags["MODEL"] == TINY and tags["TILE_SIZE"] == "224" and tags["IAMAP_VERSION"]
    record = json.loads((tmp_path / "out.iamap.json").read_text())
    assert record["parameters"]["BACKBONE_NAME"] == TINY and record["feature_dim"] == 192
    assert not (tmp_path / "out.partial.tif").exists() and not (tmp_path / "out.partial.json").exists()
    assert any("random weights" in e["message"] for e in reporter.events if e["type"] == "warning")


def test_an_edge_cell_is_nodata_when_its_part_inside_the_raster_is(tmp_path):
    data = np.random.default_rng(2).integers(1, 250, (3, 500, 224)).astype("uint8")
    data[:, 496:] = 0  # the last 4 pixel rows: all the last cell row has inside the raster
    data[:, 490:496, 112:] = 0  # 6 of the 16 rows of the cells above
    features = read(encode(tmp_path, write_raster(tmp_path / "in.tif", data, nodata=0))[0]["OUTPUT"])[0]
    assert np.isnan(features[:, 31]).all()  # input rows 496-511: their part inside the raster is nodata
    assert np.isfinite(features[:, 30]).all()  # input rows 480-495: 10 of 16 valid


def test_all_nodata_tiles_are_not_run_through_the_model(tmp_path):
    data = np.zeros((1, 224, 448), "uint16")
    data[:, :, 224:] = 500
    outputs, _ = encode(tmp_path, write_raster(tmp_path / "in.tif", data, nodata=0))
    assert outputs["tiles"] == 2 and outputs["tiles_encoded"] == 1


def test_a_band_of_empty_tile_rows_is_written_as_nodata(tmp_path):
    data = np.full((3, 224 * 5, 224), 100, "uint8")
    data[:, 224:224 * 4] = 0  # three tile rows of nodata: longer than the merge buffer
    outputs, _ = encode(tmp_path, write_raster(tmp_path / "in.tif", data, nodata=0), BATCH_SIZE=1)
    features = read(outputs["OUTPUT"])[0]
    assert outputs["tiles_encoded"] == 2 and features.shape == (192, 70, 14)
    assert np.isfinite(features[:, :14]).all() and np.isfinite(features[:, 56:]).all()
    assert np.isnan(features[:, 14:56]).all()


def patch_local_model(monkeypatch):
    """A ViT with no attention blocks and no position embedding: each cell's features depend only on its own
    16 x 16 pixels, so every tiling and merge method must give the same output."""
    real = models.load_backbone

    def load(*args, **kwargs):
        backbone = real(*args, **kwargs)
        import timm
        import torch

        torch.manual_seed(0)
        model = timm.create_model(TINY, pretrained=False, num_classes=0, depth=0, in_chans=backbone.in_chans).eval()
        model.pos_embed.data.zero_()
        backbone.model = model
        return backbone

    monkeypatch.setattr(encode_module, "load_backbone", load)  # the name the encoder calls


@pytest.mark.parametrize("merge", ["average", "first", "last", "min", "max", "centre", "cosine"])
def test_overlapping_tiles_agree_with_a_plain_tiling_for_a_local_model(tmp_path, monkeypatch, merge):
    patch_local_model(monkeypatch)
    path = random_raster(tmp_path / "in.tif", 600, 460)
    plain, _, _ = read(encode(tmp_path, path, "plain.tif")[0]["OUTPUT"])
    overlapped, _, _ = read(encode(tmp_path, path, f"{merge}.tif", STRIDE=112, MERGE_METHOD=merge)[0]["OUTPUT"])
    np.testing.assert_allclose(overlapped, plain, rtol=1e-4, atol=1e-4)


def test_overlap_changes_a_real_models_output_and_average_is_a_true_mean(tmp_path):
    path = random_raster(tmp_path / "in.tif", 448, 224)
    plain, _, _ = read(encode(tmp_path, path, "plain.tif")[0]["OUTPUT"])
    overlapped, _, _ = read(encode(tmp_path, path, "avg.tif", STRIDE=112)[0]["OUTPUT"])
    first, _, _ = read(encode(tmp_path, path, "first.tif", STRIDE=112, MERGE_METHOD="first")[0]["OUTPUT"])
    last, _, _ = read(encode(tmp_path, path, "last.tif", STRIDE=112, MERGE_METHOD="last")[0]["OUTPUT"])
    # cells 0-6: only the first tile; cells 7-13: tiles 1 and 2 (of 3 along x): mean of first and last
    np.testing.assert_allclose(overlapped[:, :, :7], plain[:, :, :7], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(overlapped[:, :, 7:14], (first[:, :, 7:14] + last[:, :, 7:14]) / 2, rtol=1e-4, atol=1e-4)
    assert not np.allclose(overlapped[:, :, 7:14], plain[:, :, 7:14])


def test_resume_after_an_interruption_gives_the_uninterrupted_result(tmp_path, monkeypatch):
    path = random_raster(tmp_path / "in.tif", 300, 900, seed=3)  # 57 output rows: 3 chunks of 16 + 9
    expected, _, _ = read(encode(tmp_path, path, "ref.tif")[0]["OUTPUT"])
    restore = interrupt_after(monkeypatch, 32)
    with pytest.raises(Interrupt):
        encode(tmp_path, path, "out.tif")
    assert not (tmp_path / "out.tif").exists()  # never looks complete
    assert json.loads((tmp_path / "out.partial.json").read_text())["rows_done"] == 32
    restore()
    outputs, reporter = encode(tmp_path, path, "out.tif")
    messages = [e["message"] for e in reporter.events if e["type"] == "text"]
    assert any("Resuming: 32 of 57" in m for m in messages)
    assert outputs["tiles_encoded"] < outputs["tiles"]
    np.testing.assert_array_equal(read(outputs["OUTPUT"])[0], expected)
    assert not (tmp_path / "out.partial.tif").exists()


def test_a_complete_output_is_reused_and_other_parameters_recompute(tmp_path):
    path = random_raster(tmp_path / "in.tif", 224, 224)
    encode(tmp_path, path)
    again, _ = encode(tmp_path, path)
    assert again["reused"] is True
    changed, _ = encode(tmp_path, path, STRIDE=112)
    assert changed["reused"] is False and changed["tiles"] == 1
    without_resume, _ = encode(tmp_path, path, RESUME=False)
    assert without_resume["reused"] is False


def test_one_band_raster_smaller_than_a_tile(tmp_path):
    path = random_raster(tmp_path / "in.tif", 100, 60, bands=1, dtype="uint16")
    outputs, _ = encode(tmp_path, path)
    features, profile, _ = read(outputs["OUTPUT"])
    assert features.shape == (192, 4, 7) and np.isfinite(features[:, :3, :6]).all()


def test_sentinel2_scene_with_11_bands(tmp_path, assets):
    outputs, reporter = encode(tmp_path, assets / "test.tif", BANDS=None)
    features, profile, _ = read(outputs["OUTPUT"])
    with rasterio.open(assets / "test.tif") as src:
        assert src.count == 11
        assert features.shape == (192, int(np.ceil(src.height / 16)), int(np.ceil(src.width / 16)))
        assert profile["crs"] == src.crs
        assert profile["transform"].c == src.transform.c and profile["transform"].f == src.transform.f
        assert profile["transform"].a == src.transform.a * 16
    # the scene has no nodata pixel, and its edge cells (the last row 11/16, the last column 8/16 inside the scene,
    # the corner 11 x 8 of 16 x 16) are computed from their part inside: no nodata at all, no corner notch
    assert not np.isnan(features).any()
    assert any("Normalisation dataset" in e["message"] for e in reporter.events if e["type"] == "text")


def test_band_subset_and_extent(tmp_path, assets):
    with rasterio.open(assets / "test.tif") as src:
        left, top = src.transform.c, src.transform.f
    extent = [left + 2000, top - 3000, left + 5000, top - 1000]  # 300 x 200 px
    outputs, _ = encode(tmp_path, assets / "test.tif", BANDS=[4, 3, 2], EXTENT=extent)
    features, profile, _ = read(outputs["OUTPUT"])
    assert features.shape == (192, 13, 19)
    assert (profile["transform"].c, profile["transform"].f) == (left + 2000, top - 1000)


@pytest.mark.parametrize("params, parameter, text", [
    ({"BANDS": []}, "BANDS", "no band selected"),
    ({"BANDS": [1, 5]}, "BANDS", "band(s) 5 do not exist"),
    ({"EXTENT": [0, 0, 10, 10]}, "EXTENT", "does not overlap the raster"),
    ({"STRIDE": 300}, "STRIDE", "must be between 1 and SIZE"),
    ({"STRIDE": 100}, "STRIDE", "multiple of 16 px"),
    ({"BACKBONE_NAME": "vit_smal_patch16_224"}, "BACKBONE_NAME", "Close names: vit_small_patch16_224"),
    ({"CKPT": "/nowhere/weights.pth"}, "CKPT", "does not exist"),
    ({"OUTPUT": "out.png"}, "OUTPUT", "give a file name ending in .tif"),
    ({"PRECISION": "fp16", "DEVICE": "cpu"}, "PRECISION", "fp16 is for GPUs"),
])
def test_bad_parameters_name_the_parameter_and_the_fix(tmp_path, params, parameter, text):
    path = random_raster(tmp_path / "in.tif", 300, 300, bands=3)
    if "OUTPUT" in params:
        params["OUTPUT"] = str(tmp_path / params["OUTPUT"])
    with pytest.raises(ParameterError) as info:
        encode(tmp_path, path, **params)
    assert info.value.parameter == parameter and text in str(info.value)
    assert not list(tmp_path.glob("out*"))


def test_missing_weights_offline_give_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    path = random_raster(tmp_path / "in.tif", 224, 224)
    with pytest.raises(ModelLoadError,
                       match="could not be downloaded and are not in the local cache.*CKPT.*PRETRAINED"):
        encode(tmp_path, path, BACKBONE_NAME="", BACKBONE="vit_tiny_patch16_224.augreg_in21k", PRETRAINED=True)


def test_missing_torchgeo_weights_say_where_the_cache_is(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(ModelLoadError, match=r"TorchGeo weights ViTSmall16_Weights.SENTINEL2_ALL_DINO.*torch hub") \
            as info:
        models.load_backbone("ssl4eo_s12_vit_small_patch16_224.sentinel2_all_dino", in_chans=13)
    assert f"cache ({tmp_path / 'torch' / 'hub' / 'checkpoints'})" in str(info.value)  # where to copy the file
    assert "or give it in CKPT" in str(info.value)


def test_every_curated_backbone_exists_in_timm():
    import timm

    from engine import catalog

    for entry in catalog.BACKBONES:
        assert timm.is_model(entry.timm_name), entry.key
    assert len({b.key for b in catalog.BACKBONES}) == len(catalog.BACKBONES)


def test_a_missing_input_is_an_input_error_not_a_traceback(tmp_path):
    with pytest.raises(IamapError) as info:
        encode(tmp_path, tmp_path / "missing.tif")
    assert isinstance(info.value, ParameterError) and info.value.parameter == "INPUT"
    assert f"cannot open {tmp_path / 'missing.tif'} as a raster" in str(info.value)
    assert not list(tmp_path.glob("out*"))


def test_target_crs_and_resolution_warp_the_input_first(tmp_path):
    path = random_raster(tmp_path / "in.tif", 448, 448)
    outputs, _ = encode(tmp_path, path, TARGET_RESOLUTION=20)
    features, profile, _ = read(outputs["OUTPUT"])
    assert features.shape == (192, 14, 14) and profile["transform"].a == 320
    outputs, _ = encode(tmp_path, path, "wgs84.tif", TARGET_CRS="EPSG:4326")
    _, profile, _ = read(outputs["OUTPUT"])
    assert profile["crs"].to_epsg() == 4326 and abs(profile["transform"].c - 15.0) < 1


def test_a_size_far_beyond_the_raster_is_refused_naming_size_before_writing(tmp_path):
    path = random_raster(tmp_path / "in.tif", 100, 100)
    with pytest.raises(ParameterError) as info:  # strips of 3 x 200 000 x 200 000 px: about 1 100 GiB
        encode(tmp_path, path, SIZE=200_000)
    assert info.value.parameter == "SIZE" and "SIZE: 200000 px is larger than the 100x100 px raster" in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # the input has none, on purpose
def test_features_of_a_raster_without_geotransform_lie_where_qgis_shows_it(tmp_path):
    data = np.random.default_rng(0).integers(1, 250, (3, 224, 448)).astype("uint8")
    path = tmp_path / "plain.tif"
    with pytest.warns(rasterio.errors.NotGeoreferencedWarning):
        with rasterio.open(path, "w", driver="GTiff", width=448, height=224, count=3, dtype="uint8") as dst:
            dst.write(data)
    outputs, _ = encode(tmp_path, path)
    with rasterio.open(outputs["OUTPUT"]) as features:
        # QGIS shows the input over x 0..448, y -224..0 (origin top-left, y down): the 16-pixel cells cover it
        assert tuple(features.transform)[:6] == (16.0, 0.0, 0.0, 0.0, -16.0, 0.0)
        assert features.shape == (14, 28) and features.crs is None


def test_a_backbone_chosen_beside_another_model_is_said_to_be_unused(tmp_path):
    from engine.encoder import run_encoder
    from engine.events import Reporter

    from ..fixtures import random_raster

    raster = random_raster(tmp_path / "in.tif", 32, 32)
    reporter = Reporter()
    run_encoder({"INPUT": str(raster), "OUTPUT": str(tmp_path / "f.tif"), "SIZE": 32, "PRETRAINED": False,
                 "BACKBONE": "vit_base_patch16_224.mae", "BACKBONE_NAME": "vit_tiny_patch16_224"}, reporter)
    warnings = [e["message"] for e in reporter.events if e["type"] == "warning"]
    assert "BACKBONE_NAME (vit_tiny_patch16_224) is used; BACKBONE (vit_base_patch16_224.mae) is not." in warnings


def straightforward_encoding(path, bands, size, stride):
    """The encoder's result computed the plain way, tile by tile in float32 with full masks (as IAMAP did before
    the pipeline was made fast): normalise each tile, nodata to the band mean, one forward per tile, cells valid
    where at least half their pixels inside the raster are (adaptive pooling), overlapping cells averaged."""
    import torch
    from torch.nn import functional

    from engine.normalize import resolve_normalization
    from engine.rasters import extent_window, read_padded
    from engine.tiling import TileGrid

    backbone = models.load_backbone("", TINY, pretrained=False, in_chans=len(bands))
    with rasterio.open(path) as src:
        window = extent_window(src, None)
        norm = resolve_normalization("auto", src, bands, window, backbone)
        grid = TileGrid.create(window.width, window.height, size, stride, *backbone.grid)
        data, valid = read_padded(src, bands, window, 0, (grid.rows - 1) * stride + size, 0,
                                  (grid.cols - 1) * stride + size)
    gh, gw = backbone.grid
    total = np.zeros((backbone.dim, grid.rows * grid.step_h + gh, grid.cols * grid.step_w + gw))
    count = np.zeros(total.shape[1:])
    scale, mean, std = (v[:, None, None] for v in (norm.scale, norm.mean, norm.std))
    for row in range(grid.rows):
        for col in range(grid.cols):
            tile = data[:, row * stride:row * stride + size, col * stride:col * stride + size]
            ok = valid[:, row * stride:row * stride + size, col * stride:col * stride + size]
            if not ok.any():
                continue
            x = np.where(ok, (tile * scale - mean) / std, 0).astype(np.float32)
            with torch.inference_mode():
                features = backbone.features(torch.from_numpy(x)[None])[0].numpy()
            inside = np.zeros(ok.shape[1:], bool)  # the tile's pixels inside the raster (the rest is padding)
            inside[:window.height - row * stride, :window.width - col * stride] = True
            pooled, pooled_inside = (functional.adaptive_avg_pool2d(torch.from_numpy(m).float()[None, None],
                                                                    (gh, gw))[0, 0] for m in (ok.any(0), inside))
            cells = ((pooled >= 0.5 * pooled_inside) & (pooled_inside > 0)).numpy()
            top, left = row * grid.step_h, col * grid.step_w
            total[:, top:top + gh, left:left + gw] += features * cells
            count[top:top + gh, left:left + gw] += cells
    with np.errstate(invalid="ignore"):
        result = (total / count)[:, :grid.out_height, :grid.out_width]
    return result.astype(np.float32)


@pytest.mark.parametrize("output_format", ["float32", "float32_deflate"])
def test_the_pipeline_gives_the_straightforward_result_with_nodata_overlap_and_five_bands(tmp_path, output_format):
    rng = np.random.default_rng(7)
    data = rng.integers(1, 4000, (5, 330, 290)).astype("uint16")
    data[:, 100:180, 40:200] = 0  # a nodata hole: whole cells and part cells
    data[2, 250:, :] = 0  # one band missing at the bottom: those pixels still count as valid
    path = write_raster(tmp_path / "in.tif", data, nodata=0)
    outputs, _ = encode(tmp_path, path, STRIDE=112, OUTPUT_FORMAT=output_format)
    features, profile, _ = read(outputs["OUTPUT"])
    expected = straightforward_encoding(path, [1, 2, 3, 4, 5], 224, 112)
    assert features.shape == expected.shape == (192, 21, 19)
    np.testing.assert_array_equal(np.isnan(features), np.isnan(expected))
    assert np.isnan(features).any() and not np.isnan(features).all()
    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=2e-5, equal_nan=True)


def test_float16_storage_halves_the_file_and_keeps_three_significant_digits(tmp_path):
    path = random_raster(tmp_path / "in.tif", 300, 300, seed=2)
    full, _ = encode(tmp_path, path, "f32.tif")
    half, _ = encode(tmp_path, path, "f16.tif", OUTPUT_FORMAT="float16")
    (a, _, _), (b, profile, _) = read(full["OUTPUT"]), read(half["OUTPUT"])
    assert profile["dtype"] == "float32" and np.isnan(profile["nodata"])  # GDAL reads half floats as float32
    with rasterio.open(half["OUTPUT"]) as src:
        assert src.tags(1, ns="IMAGE_STRUCTURE").get("NBITS") == "16"
    np.testing.assert_allclose(b, a, rtol=2 ** -10, atol=2 ** -24)  # GDAL truncates to 11 significant bits
    sizes = [tmp_path.joinpath(n).stat().st_size for n in ("f32.tif", "f16.tif")]
    assert 0.45 < sizes[1] / sizes[0] < 0.55


@pytest.mark.parametrize("width, height", [(256, 1), (1, 256), (65535, 1), (256, 7)])
def test_a_raster_thinner_than_half_a_feature_cell_is_refused_naming_input_and_the_minimum(tmp_path, width, height):
    path = random_raster(tmp_path / "thin.tif", width, height)
    with pytest.raises(ParameterError) as info:
        encode(tmp_path, path)
    assert info.value.parameter == "INPUT" and f"is {width}x{height} px, too small to encode" in str(info.value)
    assert "at least 8 px wide and 8 px high" in str(info.value)
    assert f"use a SIZE of {min(width, height) * 28} or less" in str(info.value)
    assert list(tmp_path.iterdir()) == [path]


def test_a_one_pixel_high_raster_encodes_with_the_size_the_message_proposes(tmp_path):
    outputs, _ = encode(tmp_path, random_raster(tmp_path / "line.tif", 256, 1), SIZE=28)
    features, _, _ = read(outputs["OUTPUT"])
    assert features.shape == (192, 1, 128) and not np.isnan(features).any()  # cells of 2x2 px, half valid


def test_a_size_larger_than_the_whole_raster_names_size(tmp_path):
    with pytest.raises(ParameterError) as info:
        encode(tmp_path, random_raster(tmp_path / "small.tif", 48, 48), SIZE=100000)
    assert info.value.parameter == "SIZE" and "100000 px is larger than the 48x48 px raster" in str(info.value)
    assert "Use a SIZE of 1344 or less" in str(info.value)


def test_a_raster_eight_pixels_high_gives_valid_features(tmp_path):
    outputs, _ = encode(tmp_path, random_raster(tmp_path / "strip.tif", 256, 8))
    features, _, _ = read(outputs["OUTPUT"])
    assert features.shape == (192, 1, 16) and not np.isnan(features).any()


def test_an_output_with_no_valid_value_is_never_a_success(tmp_path):
    data = np.zeros((3, 64, 64), "uint8")  # every pixel is the nodata value
    path = write_raster(tmp_path / "empty.tif", data, nodata=0)
    with pytest.raises(ParameterError) as info:
        encode(tmp_path, path)
    assert info.value.parameter == "OUTPUT" and "has no valid value: every pixel is nodata" in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.tif"]  # no output, no partial, no manifest
