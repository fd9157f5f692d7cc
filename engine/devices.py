"""Choosing the torch device and the precision a tool runs in (shared by the encoder and similarity)."""

from __future__ import annotations

from .errors import ParameterError


def choose_device(device: str, cuda_id: int):
    """The torch device of DEVICE and CUDA_ID (``auto``: the GPU when there is one)."""
    # deferred: torch takes seconds to import, and only the steps that compute with it need it
    import torch

    if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ParameterError("DEVICE", "cuda was asked for but PyTorch sees no CUDA GPU here; use cpu or auto.")
        if not 0 <= cuda_id < torch.cuda.device_count():
            raise ParameterError("CUDA_ID", f"GPU {cuda_id} does not exist; this machine has "
                                            f"{torch.cuda.device_count()} (numbered from 0).")
        return torch.device(f"cuda:{cuda_id}")
    return torch.device("cpu")


def choose_precision(precision: str, device) -> str:
    """``auto``: bf16 on a CPU with native bf16 and on GPUs that have it, fp16 on older GPUs, else fp32."""
    # deferred: torch takes seconds to import, and only the steps that compute with it need it
    import torch

    if precision != "auto":
        if precision == "fp16" and device.type == "cpu":
            raise ParameterError("PRECISION", "fp16 is for GPUs; on a CPU use bf16 or fp32.")
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_native_bf16() else "fp32"


def cpu_has_native_bf16() -> bool:
    """True when the CPU has bf16 instructions (AVX512-BF16 or AMX), where bf16 beats fp32."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags
