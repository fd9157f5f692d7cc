"""Model loading: a local Hugging Face cache, token layouts (checkpoint files: test_checkpoints.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import torch

from engine import models

from ..conftest import REPO

TINY = "vit_tiny_patch16_224"


def tiny_state(seed=1, **kwargs):
    import timm

    torch.manual_seed(seed)
    return timm.create_model(TINY, pretrained=False, num_classes=0, **kwargs).state_dict()


def test_registers_and_non_square_grids_come_from_the_model():
    backbone = models.load_backbone("vit_small_patch14_reg4_dinov2.lvd142m", pretrained=False)
    assert backbone.model.num_prefix_tokens == 5 and backbone.grid == (16, 16) and backbone.input_size == (224, 224)
    wide = models.load_backbone("", "vit_tiny_patch16_224", pretrained=False)
    wide.model.patch_embed.img_size = (224, 448)
    wide.model.patch_embed.grid_size = (14, 28)
    tokens = torch.randn(2, 1 + 14 * 28, 192)
    assert models.tokens_to_map(tokens, wide.model).shape == (2, 192, 14, 28)


def test_channels_last_maps_are_turned_to_channels_first():
    class Model:
        output_fmt = "NHWC"

    assert models.tokens_to_map(torch.zeros(1, 7, 9, 32), Model(), dim=32).shape == (1, 32, 7, 9)


def test_hf_hub_model_from_a_local_cache(tmp_path):
    """An hf-hub: model resolved offline from a Hugging Face cache laid out as huggingface_hub does."""
    from safetensors.torch import save_file

    cache = tmp_path / "hub"
    repo = cache / "models--iamap-tests--tiny-vit"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    (snapshot / "config.json").write_text(json.dumps({
        "architecture": TINY, "num_classes": 0, "num_features": 192,
        "pretrained_cfg": {"input_size": [3, 224, 224], "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5],
                           "num_classes": 0, "interpolation": "bicubic", "crop_pct": 0.9}}))
    state = tiny_state(seed=7)
    save_file(state, snapshot / "model.safetensors")
    code = f"""
import torch
from engine import models
b = models.load_backbone("", "hf-hub:iamap-tests/tiny-vit", pretrained=True)
expected = {{}}
from safetensors.torch import load_file
expected = load_file({str(snapshot / 'model.safetensors')!r})
assert all(torch.equal(b.model.state_dict()[k], v) for k, v in expected.items())
print("OK", b.mean, b.dim)
"""
    env = {"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "OK (0.5, 0.5, 0.5) 192" in result.stdout
