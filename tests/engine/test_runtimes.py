"""The encoder's runtimes: the table's choice per device, the fallback to the reference, the export cache, and
features within the cosine bound of PyTorch fp32 on the bundled scenes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
import torch

from engine import catalog, runtimes
from engine.contract import ENCODER
from engine.encoder import run_encoder
from engine.events import Reporter
from engine.models import LoadedBackbone, load_backbone
from engine.runtimes import REFERENCE, Runtime, TorchForward, choose_runtime, model_forward
from engine.openvino_runtime import stream_split

from ..conftest import REPO

TINY = "vit_tiny_patch16_224"
SAMPLE = REPO / "docs" / "sample" / "sample_rgb.tif"
#: The bound every runtime keeps to PyTorch fp32 features, per pixel (docs/faq.md, the RUNTIME help).
MIN_COSINE = 0.999


def messages(reporter, kind=None):
    return [e["message"] for e in reporter.events if e["type"] in ((kind,) if kind else ("text", "warning"))]


def test_the_table_is_the_parameter_s_choices():
    assert catalog.RUNTIMES == ("auto", *(r.name for r in runtimes.RUNTIMES))
    assert ENCODER["RUNTIME"].choices == catalog.RUNTIMES and ENCODER["RUNTIME"].default == "auto"
    assert runtimes.RUNTIMES[-1] is REFERENCE and REFERENCE.name == "torch"


def test_auto_takes_openvino_on_a_cpu_and_the_reference_on_a_gpu():
    pytest.importorskip("openvino")
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)  # a device object needs no GPU
    assert choose_runtime("auto", cpu, "bf16").name == "openvino"
    assert choose_runtime("auto", cpu, "fp32").name == "openvino"
    for precision in ("fp16", "bf16", "fp32"):
        assert choose_runtime("auto", cuda, precision) is REFERENCE
    assert choose_runtime("torch", cpu, "bf16") is REFERENCE


def test_a_runtime_asked_for_where_it_cannot_run_falls_back_to_the_reference_with_a_warning():
    reporter = Reporter()
    assert choose_runtime("openvino", torch.device("cuda", 0), "fp16", reporter) is REFERENCE
    assert messages(reporter, "warning") == ["RUNTIME openvino does not run fp16 on cuda: using torch (the "
                                             "reference)."]


def test_a_missing_package_falls_back_to_the_reference_with_a_log_line(monkeypatch):
    absent = Runtime("openvino", ("cpu",), ("bf16", "fp32"), "iamap_no_such_package", "not installed here")
    monkeypatch.setattr(runtimes, "RUNTIMES", (absent, REFERENCE))
    for requested, kind in (("auto", "text"), ("openvino", "warning")):
        reporter = Reporter()
        assert choose_runtime(requested, torch.device("cpu"), "bf16", reporter) is REFERENCE
        assert any("iamap_no_such_package is not installed" in m for m in messages(reporter, kind))


def test_the_reference_forward_is_the_tile_encoders_default_and_autocasts():
    backbone = load_backbone("", TINY, pretrained=False)
    x = torch.randn(2, 3, 224, 224)
    forward = TorchForward(backbone, torch.device("cpu"), "bf16")
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        expected = backbone.features(x)
    with torch.inference_mode():
        fp32 = backbone.features(x)
    assert torch.equal(forward(x), expected) and not torch.equal(forward(x), fp32)  # bf16 inside
    # the GPU precisions map to the same autocast (constructing the forward moves the model: only on a CPU here)
    assert TorchForward(backbone, torch.device("cpu"), "fp16").autocast_dtype == torch.float16
    assert TorchForward(backbone, torch.device("cpu"), "fp32").autocast_dtype is None


def test_the_export_is_cached_and_used_only_for_its_own_key(tmp_path):
    pytest.importorskip("openvino")
    backbone = load_backbone("", TINY, pretrained=False)
    cache = tmp_path / "cache"

    def build():
        reporter = Reporter()
        forward = model_forward(runtimes.runtime("openvino"), backbone, torch.device("cpu"), "fp32", 2, reporter,
                                cache)
        assert forward.runtime == "openvino"
        return forward, " ".join(messages(reporter))

    first, said = build()
    part = stream_split(2, torch.get_num_threads())[1]
    assert f"exported vit_tiny_patch16_224 for {part}x3x224x224 inputs" in said and "first run only" in said
    assert sorted(p.suffix for p in cache.iterdir()) == [".bin", ".json", ".xml"]  # no partial file left
    _, said = build()
    assert "loaded the export" in said and "exported" not in said
    record = next(cache.glob("*.json"))
    key = json.loads(record.read_text())
    assert key["model"] == TINY and key["input_shape"] == [part, 3, 224, 224] and key["openvino"]
    record.write_text(json.dumps({**key, "openvino": "0.0"}))  # a record that does not match is never loaded
    _, said = build()
    assert "exported" in said and "loaded" not in said
    with torch.no_grad():
        backbone.model.blocks[0].mlp.fc1.weight.mul_(2)  # other weights: another key, exported again
    changed, said = build()
    assert "exported" in said and len(list(cache.glob("*.json"))) == 2
    x = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        assert torch.allclose(changed(x), backbone.features(x), atol=1e-3)  # the new weights, not the cached ones
    assert not torch.allclose(first(x), changed(x), atol=1e-3)


def test_a_batch_is_split_into_one_equal_part_per_thread_as_far_as_it_goes():
    assert stream_split(8, 2) == (2, 4) and stream_split(8, 16) == (8, 1) and stream_split(8, 1) == (1, 8)
    assert stream_split(5, 2) == (2, 3) and stream_split(5, 4) == (3, 2)  # no stream without a tile
    assert stream_split(1, 8) == (1, 1)


@pytest.mark.parametrize("tiles", [3, 1])
def test_a_short_last_batch_is_padded_and_cut_across_the_streams(tiles, monkeypatch):
    pytest.importorskip("openvino")
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)  # two streams of two tiles, whatever the machine
    backbone = load_backbone("", TINY, pretrained=False)
    forward = model_forward(runtimes.runtime("openvino"), backbone, torch.device("cpu"), "fp32", 4)
    assert len(forward.requests) == 2 and forward.shape[0] == 2
    x = torch.randn(tiles, 3, 224, 224)  # 3: the second stream holds one tile and one of padding; 1: it idles
    features = forward(x)
    with torch.inference_mode():
        expected = backbone.features(x)
    assert features.shape == (tiles, 192, 14, 14) and torch.allclose(features, expected, atol=1e-3)


class Unexportable(torch.nn.Module):
    """A feature map whose computation depends on the data: torch.export refuses it."""

    def forward_features(self, x):
        if x.mean() > 0:
            return x[:, :, ::16, ::16]
        return -x[:, :, ::16, ::16]


def test_a_model_that_cannot_be_exported_runs_on_the_reference_with_a_warning(tmp_path):
    pytest.importorskip("openvino")
    backbone = LoadedBackbone(model=Unexportable(), name="unexportable", weights="", input_size=(224, 224),
                              grid=(14, 14), dim=3, in_chans=3, mean=None, std=None, input_scale=None)
    reporter = Reporter()
    forward = model_forward(runtimes.runtime("openvino"), backbone, torch.device("cpu"), "fp32", 2, reporter,
                            tmp_path)
    assert isinstance(forward, TorchForward) and forward.runtime == "torch"
    assert any(m.startswith("RUNTIME openvino: unexportable could not be exported") and m.endswith(
        "using torch (the reference).") for m in messages(reporter, "warning"))
    x = torch.ones(2, 3, 224, 224)
    assert torch.equal(forward(x), x[:, :, ::16, ::16])
    assert not list(tmp_path.iterdir())  # nothing cached


def per_pixel_cosine(a: str, b: str) -> np.ndarray:
    with rasterio.open(a) as fa, rasterio.open(b) as fb:
        x, y = fa.read().reshape(fa.count, -1), fb.read().reshape(fb.count, -1)
    valid = np.isfinite(x).all(0) & np.isfinite(y).all(0)
    assert valid.sum() > 100 and (valid == np.isfinite(x).all(0)).all()  # the same nodata
    x, y = x[:, valid].astype(np.float64), y[:, valid].astype(np.float64)
    return (x * y).sum(0) / (np.linalg.norm(x, axis=0) * np.linalg.norm(y, axis=0))


@pytest.mark.parametrize("scene", ["sample", "sentinel2"])
def test_openvino_features_keep_the_cosine_bound_to_fp32_on_the_bundled_scenes(tmp_path, scene, request):
    pytest.importorskip("openvino")
    path = SAMPLE if scene == "sample" else request.getfixturevalue("assets") / "test.tif"
    outputs = {}
    for runtime, precision in (("torch", "fp32"), ("openvino", "bf16"), ("openvino", "fp32")):
        reporter = Reporter()
        outputs[runtime, precision] = run_encoder(
            {"INPUT": str(path), "OUTPUT": str(tmp_path / f"{runtime}_{precision}.tif"), "BACKBONE_NAME": TINY,
             "PRETRAINED": False, "PRECISION": precision, "RUNTIME": runtime, "RESUME": False}, reporter)
        assert outputs[runtime, precision]["runtime"] == runtime
        with rasterio.open(outputs[runtime, precision]["OUTPUT"]) as src:
            assert src.tags()["RUNTIME"] == runtime and src.tags()["PRECISION"] == precision
    reference = outputs["torch", "fp32"]["OUTPUT"]
    assert per_pixel_cosine(reference, outputs["openvino", "bf16"]["OUTPUT"]).min() >= MIN_COSINE
    assert per_pixel_cosine(reference, outputs["openvino", "fp32"]["OUTPUT"]).min() >= 0.99999
