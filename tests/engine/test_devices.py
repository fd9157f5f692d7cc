"""Device and precision choice."""

from __future__ import annotations

import pytest
import torch

from engine import devices
from engine.devices import choose_device, choose_precision
from engine.errors import ParameterError


def test_cpu_is_always_available_and_auto_falls_back_to_it_without_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert choose_device("cpu", 0).type == "cpu" and choose_device("auto", 0).type == "cpu"
    with pytest.raises(ParameterError, match="DEVICE: cuda was asked for but PyTorch sees no CUDA GPU"):
        choose_device("cuda", 0)


def test_a_gpu_number_that_does_not_exist_names_cuda_id(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert str(choose_device("cuda", 0)) == "cuda:0"
    with pytest.raises(ParameterError, match=r"CUDA_ID: GPU 2 does not exist; this machine has 1"):
        choose_device("auto", 2)


@pytest.mark.parametrize("native_bf16, expected", [(True, "bf16"), (False, "fp32")])
def test_auto_precision_on_a_cpu_follows_its_bf16_support(monkeypatch, native_bf16, expected):
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: native_bf16)
    assert choose_precision("auto", torch.device("cpu")) == expected
    assert choose_precision("fp32", torch.device("cpu")) == "fp32"


def test_fp16_on_a_cpu_is_refused():
    with pytest.raises(ParameterError, match="PRECISION: fp16 is for GPUs"):
        choose_precision("fp16", torch.device("cpu"))


def test_bf16_detection_reads_the_cpu_flags(monkeypatch, tmp_path):
    import builtins

    real_open = builtins.open

    def fake_open(path, *args, **kwargs):
        if path == "/proc/cpuinfo":
            return real_open(tmp_path / "cpuinfo", *args, **kwargs)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    (tmp_path / "cpuinfo").write_text("flags : fpu sse avx512f amx_bf16\n")
    assert devices.cpu_has_native_bf16()
    (tmp_path / "cpuinfo").write_text("flags : fpu sse avx2\n")
    assert not devices.cpu_has_native_bf16()
