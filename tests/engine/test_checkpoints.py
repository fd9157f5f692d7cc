"""Local weights files: safe reading, unwrapping, fitting to the model, band adaptation, clear refusals."""

from __future__ import annotations

import pytest
import torch

from engine import models
from engine.checkpoints import read_checkpoint
from engine.errors import ModelLoadError, ParameterError

from .test_models import TINY, tiny_state


@pytest.mark.parametrize("suffix, wrap", [(".safetensors", None), (".pth", "state_dict"), (".pt", "model"),
                                          (".bin", None)])
def test_checkpoint_round_trip(tmp_path, suffix, wrap):
    state = tiny_state()
    path = tmp_path / f"weights{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, path)
    else:
        stored = {f"module.{k}": v for k, v in state.items()}  # as saved by DataParallel
        torch.save({wrap: stored, "epoch": 3} if wrap else stored, path)
    backbone = models.load_backbone("", TINY, pretrained=False, checkpoint=str(path), in_chans=3)
    loaded = backbone.model.state_dict()
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    assert backbone.weights.startswith("checkpoint") and backbone.dim == 192 and backbone.grid == (14, 14)


def test_checkpoint_of_another_architecture_names_the_keys(tmp_path):
    import timm

    path = tmp_path / "small.pth"
    torch.save(timm.create_model("vit_small_patch16_224", pretrained=False, num_classes=0).state_dict(), path)
    with pytest.raises(ModelLoadError, match=r"CKPT small.pth does not fit the model: shape mismatch .*cls_token"):
        models.load_backbone("", TINY, pretrained=False, checkpoint=str(path))


class Payload:
    """Stands for arbitrary code a pickle would run on load."""


def test_checkpoint_with_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"weights": torch.zeros(2), "object": Payload()}, path)
    with pytest.raises(ParameterError, match="CKPT: evil.pth could not be read as weights only"):
        models.load_backbone("", TINY, pretrained=False, checkpoint=str(path))


def test_three_band_checkpoint_adapts_to_eleven_bands(tmp_path):
    path = tmp_path / "rgb.pth"
    state = tiny_state()
    torch.save(state, path)
    backbone = models.load_backbone("", TINY, pretrained=False, checkpoint=str(path), in_chans=11)
    weight = backbone.model.patch_embed.proj.weight
    assert weight.shape[1] == 11
    torch.testing.assert_close(weight[:, 3], state["patch_embed.proj.weight"][:, 0] * 3 / 11)


@pytest.mark.parametrize("content, text", [
    (b"", r"is empty \(0 bytes\)"),
    (b"\x80", "could not be read as weights only"),
    (None, "holds no state dict"),
])
def test_empty_or_broken_checkpoints_are_refused_naming_ckpt(tmp_path, content, text):
    path = tmp_path / "empty.pth"
    if content is None:
        torch.save({}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(ParameterError, match=f"CKPT: empty.pth {text}"):
        read_checkpoint(str(path))


def test_empty_safetensors_file_is_refused_naming_ckpt(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "empty.safetensors"
    save_file({}, path)
    with pytest.raises(ParameterError, match="CKPT: empty.safetensors holds no state dict"):
        models.load_backbone("", TINY, pretrained=False, checkpoint=str(path))
