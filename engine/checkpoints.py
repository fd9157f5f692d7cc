"""Local weights files (``CKPT``): read as tensors only, unwrapped from what training scripts put around
them, and fitted to a timm model (position embeddings, input band count) with every mismatch named.

Nothing here can run code from a file: ``.safetensors`` holds tensors only and torch files are read with
``torch.load(weights_only=True)`` (see docs/security.md).
"""

from __future__ import annotations

import math
from pathlib import Path

from .errors import ModelLoadError, ParameterError

#: Wrappers training scripts put around a state dict.
_STATE_DICT_KEYS = ("state_dict", "model", "model_state_dict", "module", "teacher", "network")
#: Prefixes training frameworks add to every key.
_KEY_PREFIXES = ("module.", "model.", "backbone.", "encoder.", "_orig_mod.")


def read_checkpoint(path: str) -> dict:
    """Read a state dict safely (tensors only, no code) from .safetensors or a torch file."""
    # deferred: torch takes seconds to import, and only the steps that compute with it need it
    import torch

    suffix = Path(path).suffix.lower()
    if Path(path).stat().st_size == 0:
        raise ParameterError("CKPT", f"{Path(path).name} is empty (0 bytes): the download or copy did not finish. "
                                     "Copy the weights file again.")
    try:
        if suffix == ".safetensors":
            # deferred: with torch (see load_state_dict)
            from safetensors.torch import load_file

            state = load_file(path, device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        detail = (str(exc).strip().splitlines() or [""])[0][:300]
        raise ParameterError("CKPT", f"{Path(path).name} could not be read as weights only (IAMAP never runs code "
                                     f"from a checkpoint): {type(exc).__name__}: {detail}") from None
    for _ in range(3):  # unwrap {"state_dict": {...}} and friends
        if isinstance(state, dict):
            inner = next((state[k] for k in _STATE_DICT_KEYS if isinstance(state.get(k), dict)), None)
            if inner is not None and not any(hasattr(v, "shape") for v in state.values()):
                state = inner
                continue
        break
    if not isinstance(state, dict) or not any(hasattr(v, "shape") for v in state.values()):
        raise ParameterError("CKPT", f"{Path(path).name} holds no state dict (a mapping of parameter names to "
                                     "tensors).")
    state = {k: v for k, v in state.items() if hasattr(v, "shape")}
    for prefix in _KEY_PREFIXES:
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def load_state_dict(model, state: dict, source: str) -> None:
    """Load ``state`` into ``model`` after timm's own fixes (position embedding size, input bands).

    Raises ModelLoadError naming the missing, unexpected and mis-shaped keys.
    """
    try:
        # deferred: timm imports torch (seconds); only a checkpoint's loading needs it
        from timm.models import vision_transformer

        if isinstance(model, vision_transformer.VisionTransformer):
            state = vision_transformer.checkpoint_filter_fn(state, model)
    except Exception:
        pass  # the comparison below reports what still does not fit
    own = model.state_dict()
    state = _adapt_input_bands(state, own)
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own and not k.startswith(("head.", "fc_norm.", "head_drop."))]
    mismatched = [f"{k} {tuple(state[k].shape)} vs model {tuple(own[k].shape)}" for k in own
                  if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or mismatched:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched)):
            if keys:
                parts.append(f"{label} ({len(keys)}): {', '.join(keys[:8])}{' ...' if len(keys) > 8 else ''}")
        raise ModelLoadError(f"{source} does not fit the model: " + "; ".join(parts) +
                             ". Check that BACKBONE / BACKBONE_NAME is the architecture the checkpoint was trained "
                             "with.")
    model.load_state_dict({k: state[k] for k in own}, strict=True)


def _adapt_input_bands(state: dict, own: dict) -> dict:
    """Fit first-layer weights trained on another band count to the model's bands.

    One band: the sum over the trained bands (as timm does). Otherwise the trained bands are repeated
    cyclically and cut to the new count, scaled so the layer's response keeps its magnitude.
    """
    for key, target in own.items():
        old = state.get(key)
        if old is None or target.ndim != 4 or old.ndim != 4 or old.shape[1] == target.shape[1] \
                or old.shape[0] != target.shape[0] or old.shape[2:] != target.shape[2:]:
            continue
        n_old, n_new = old.shape[1], target.shape[1]
        if n_new == 1:
            adapted = old.sum(dim=1, keepdim=True)
        else:
            adapted = old.repeat(1, math.ceil(n_new / n_old), 1, 1)[:, :n_new] * (n_old / n_new)
        state = {**state, key: adapted.to(old.dtype)}
    return state
