"""Loading backbones (timm names, ``hf-hub:`` repos, TorchGeo weights, local checkpoints) and getting a
feature grid out of them. Reading a checkpoint file and fitting its weights to a model: :mod:`engine.checkpoints`.

Token handling comes from the model itself: ``num_prefix_tokens`` (class and register tokens) are dropped
and the patch tokens are laid out on the model's own ``patch_embed.grid_size``, so non-square grids work;
models whose ``forward_features`` already returns a map (NCHW, or NHWC such as some of timm's) are used
as they are. The grid and feature size are read from one dummy forward at load time.
"""

from __future__ import annotations

import difflib
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from . import catalog
from .checkpoints import load_state_dict, read_checkpoint
from .contract import CHECKPOINT_SUFFIXES
from .errors import ModelLoadError, ParameterError
from .events import NULL_REPORTER


@dataclass
class LoadedBackbone:
    """A loaded model ready to encode tiles.

    Attributes
    ----------
    model : torch.nn.Module
        In eval mode, on the CPU until the caller moves it.
    name : str
        What was asked for (curated key, timm name or ``hf-hub:`` id).
    weights : str
        Where the weights came from, for the output's metadata.
    input_size : tuple[int, int]
        Model input (height, width) in pixels; tiles are resized to it.
    grid : tuple[int, int]
        Feature cells (rows, columns) per tile.
    dim : int
        Feature dimension.
    in_chans : int
    mean, std : tuple of float or None
        The model's normalisation (in the units after ``input_scale``), one value per input channel.
    input_scale : float or None
        Factor from raw pixel values to the units of ``mean``/``std`` (1/255 for ImageNet models on 8-bit data).
    """

    model: object
    name: str
    weights: str
    input_size: tuple[int, int]
    grid: tuple[int, int]
    dim: int
    in_chans: int
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    input_scale: float | None

    def features(self, batch):
        """Run ``batch`` (N, C, H, W) through the model; return features as (N, dim, grid_h, grid_w)."""
        return tokens_to_map(self.model.forward_features(batch), self.model, self.dim, self.grid)


def feature_tensor(output):
    """The one tensor of what ``forward_features`` returned (the last of a list, the patch tokens of a dict)."""
    if isinstance(output, (list, tuple)):
        output = output[-1]
    if isinstance(output, dict):
        output = output.get("x_norm_patchtokens", next(iter(output.values())))
    return output


def tokens_to_map(output, model, dim: int | None = None, grid: tuple[int, int] | None = None):
    """Turn whatever ``forward_features`` returned into an NCHW feature map."""
    output = feature_tensor(output)
    if output.ndim == 4:
        channels_last = (dim is not None and output.shape[1] != dim and output.shape[-1] == dim) or \
            getattr(model, "output_fmt", "NCHW") == "NHWC"
        return output.permute(0, 3, 1, 2) if channels_last else output
    if output.ndim != 3:
        raise ModelLoadError(f"Unsupported model output of shape {tuple(output.shape)}: IAMAP needs patch tokens "
                             "(N, tokens, dim) or a feature map (N, C, H, W).")
    prefix = int(getattr(model, "num_prefix_tokens", 0) or 0)
    tokens = output[:, prefix:, :]
    if grid is None:
        patch_embed = getattr(model, "patch_embed", None)
        grid = tuple(getattr(patch_embed, "grid_size", ()) or ())
    if len(grid) != 2 or grid[0] * grid[1] != tokens.shape[1]:
        raise ModelLoadError(f"The model returned {tokens.shape[1]} patch tokens after {prefix} prefix tokens, "
                             f"which does not match its patch grid {grid}; this architecture is not supported.")
    n, _, d = tokens.shape
    return tokens.transpose(1, 2).reshape(n, d, grid[0], grid[1])


def hub_reachable(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    """Whether a TCP connection to ``host``:443 succeeds within ``timeout`` seconds."""
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _go_offline_if_unreachable() -> None:
    """Without network, make huggingface_hub use its cache at once instead of retrying for a minute."""
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    if not offline and hub_reachable():
        return
    # huggingface_hub reads the variable once, at import: set its constant too
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        # deferred: huggingface_hub brings requests and more; only its cache paths are read
        import huggingface_hub.constants as hf_constants

        hf_constants.HF_HUB_OFFLINE = True
    except ImportError:
        pass


def hf_cache_dir() -> str:
    """Where huggingface_hub keeps downloaded weights (``HF_HUB_CACHE``, ``HF_HOME`` or the default)."""
    try:
        # deferred: huggingface_hub brings requests and more; only its cache paths are read
        import huggingface_hub.constants as hf_constants

        return str(hf_constants.HF_HUB_CACHE)
    except ImportError:  # the same rule as huggingface_hub's, for a report from a broken environment
        home = os.environ.get("HF_HOME", os.path.join(os.path.expanduser("~"), ".cache", "huggingface"))
        return os.environ.get("HF_HUB_CACHE") or os.path.join(home, "hub")


def check_model_name(name: str) -> None:
    """Raise a ParameterError suggesting close names when timm does not know ``name``."""
    # deferred: timm imports torch (seconds); only loading a model needs it
    import timm

    if name.startswith("hf-hub:") or timm.is_model(name):
        return
    candidates = sorted(set(timm.list_models()) | set(timm.list_pretrained()))
    close = difflib.get_close_matches(name, candidates, n=5, cutoff=0.6)
    hint = f" Close names: {', '.join(close)}." if close else " See timm.list_models() for the names."
    raise ParameterError("BACKBONE_NAME", f"unknown model {name!r}.{hint} Models from the Hugging Face hub are "
                                          "written hf-hub:owner/repository.")


def load_backbone(backbone: str, backbone_name: str = "", pretrained: bool = True, checkpoint: str = "",
                  in_chans: int = 3, reporter=NULL_REPORTER) -> LoadedBackbone:
    """Create the model for ``backbone_name`` (when given) or the curated ``backbone`` and load its weights.

    Parameters
    ----------
    backbone : str
        A key of ``catalog.BACKBONES``.
    backbone_name : str
        Free text that overrides ``backbone``: any timm name, or ``hf-hub:owner/repo``.
    pretrained : bool
        Load the published weights (timm hub, Hugging Face cache or TorchGeo). False: random weights.
    checkpoint : str
        Local weights file; replaces the published weights.
    in_chans : int
        Input bands; first-layer weights are adapted when the weights have another band count.
    """
    # deferred: torch takes seconds to import, and only the steps that compute with it need it
    import torch
    import timm

    name = (backbone_name or "").strip() or backbone
    entry = catalog.backbone(name)
    timm_name = entry.timm_name if entry else name
    check_model_name(timm_name)
    if checkpoint:
        path = Path(checkpoint)
        if not path.is_file():
            raise ParameterError("CKPT", f"checkpoint file {checkpoint} does not exist.")
        if path.suffix.lower() not in CHECKPOINT_SUFFIXES:
            raise ParameterError("CKPT", f"{path.name}: unsupported checkpoint type; use one of "
                                         f"{', '.join(CHECKPOINT_SUFFIXES)}.")
    use_hub = pretrained and not checkpoint and not (entry and entry.torchgeo_weights)
    if use_hub or timm_name.startswith("hf-hub:"):
        _go_offline_if_unreachable()
    kwargs = {"num_classes": 0, "in_chans": in_chans}
    if entry and entry.img_size:
        kwargs["img_size"] = entry.img_size
    torch.manual_seed(0)  # random initialisation (PRETRAINED false) is reproducible
    try:
        model = timm.create_model(timm_name, pretrained=use_hub, **kwargs)
    except TypeError as exc:  # architectures without img_size
        kwargs.pop("img_size", None)
        try:
            model = timm.create_model(timm_name, pretrained=use_hub, **kwargs)
        except Exception:
            raise _weights_error(name, exc) from None
    except Exception as exc:
        raise _weights_error(name, exc) from None
    weights = f"{name} (published weights)" if use_hub else f"{name} (random initialisation)"
    input_scale = None
    if checkpoint:
        load_state_dict(model, read_checkpoint(checkpoint), source=f"CKPT {Path(checkpoint).name}")
        weights = f"checkpoint {Path(checkpoint).resolve()}"
    elif pretrained and entry and entry.torchgeo_weights:
        load_state_dict(model, _torchgeo_state_dict(entry), source=entry.torchgeo_weights)
        weights = f"TorchGeo {entry.torchgeo_weights}"
    if entry and entry.torchgeo_weights:
        input_scale = 1 / 10000  # SSL4EO-S12 weights were trained on reflectance / 10000
    if not pretrained and not checkpoint:
        reporter.warning("PRETRAINED is false: the model has random weights, so the features are not meaningful "
                         "(use this for tests or with a checkpoint only).")
    model.eval()
    cfg = getattr(model, "pretrained_cfg", {}) or {}
    input_size = _input_size(model, cfg)
    mean = std = None
    if not (entry and entry.torchgeo_weights) and cfg.get("mean") and cfg.get("std"):
        mean = tuple(cfg["mean"][i % len(cfg["mean"])] for i in range(in_chans))
        std = tuple(cfg["std"][i % len(cfg["std"])] for i in range(in_chans))
    elif entry and entry.torchgeo_weights:
        mean, std = (0.0,) * in_chans, (1.0,) * in_chans
    with torch.inference_mode():
        probe = tokens_to_map(model.forward_features(torch.zeros(1, in_chans, *input_size)), model)
    return LoadedBackbone(model=model, name=name, weights=weights, input_size=input_size, grid=tuple(probe.shape[2:]),
                    dim=int(probe.shape[1]), in_chans=in_chans, mean=mean, std=std, input_scale=input_scale)


def _input_size(model, cfg: dict) -> tuple[int, int]:
    patch_embed = getattr(model, "patch_embed", None)
    img_size = getattr(patch_embed, "img_size", None)
    if img_size:
        return (int(img_size[0]), int(img_size[1])) if isinstance(img_size, (tuple, list)) else (img_size, img_size)
    size = cfg.get("input_size", (3, 224, 224))
    return int(size[1]), int(size[2])


def _weights_error(name: str, exc: Exception) -> ModelLoadError:
    text = f"{type(exc).__name__}: {exc}".strip().splitlines()[0][:400]
    offline = any(word in text.lower() for word in ("connection", "local cache", "offline", "resolve", "urlopen",
                                                    "name or service", "network", "hub"))
    if offline:
        return ModelLoadError(
            f"The weights of {name} could not be downloaded and are not in the local cache ({hf_cache_dir()}). "
            "Connect to the internet once to download them, copy them into that cache, give a local weights file "
            "in CKPT, or set PRETRAINED to false for random weights (tests only). Detail: " + text)
    return ModelLoadError(f"Could not create the model {name}: {text}")


def _torchgeo_state_dict(entry: catalog.CuratedBackbone) -> dict:
    # deferred: torchgeo is slow to import; only its curated backbones need it
    import torchgeo.models

    enum_name, member = entry.torchgeo_weights.split(".")
    weights = getattr(getattr(torchgeo.models, enum_name), member)
    try:
        return weights.get_state_dict(progress=False)
    except Exception as exc:
        # deferred: torch takes seconds to import, and only the steps that compute with it need it
        import torch.hub

        raise ModelLoadError(
            f"The TorchGeo weights {entry.torchgeo_weights} could not be downloaded and are not in the torch hub "
            f"cache ({os.path.join(torch.hub.get_dir(), 'checkpoints')}). Connect once, copy the file "
            f"{weights.url.rsplit('/', 1)[-1]} there, or give it in CKPT. Detail: {type(exc).__name__}: {exc}"
        ) from None
