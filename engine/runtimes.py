"""Which runtime runs the encoder's model, chosen from one declarative table, and the forward it gives.

``RUNTIME`` ``auto`` takes the first runtime of :data:`RUNTIMES` whose conditions hold (device type,
precision, an importable package); the last one, PyTorch eager under autocast, is the reference: it runs
everywhere (CPU, CUDA fp16/bf16) and every other runtime is measured against it and against fp32
(``benchmarks/encoder_benchmark.py``). A runtime that cannot be had (package missing, the model does not export)
falls back to the reference with a log line, never to an error.

Measured on an AMD EPYC (Zen 4, AVX512-BF16, no AMX), 2 cores, batch 8 (see docs/faq.md, "Encoder
throughput"): OpenVINO runs ViT-Ti/S/B faster than PyTorch eager, in bf16 and in fp32, with features within a
per-pixel cosine of 0.9999 of PyTorch's fp32 ones; PyTorch with bf16 weights instead of autocast gained
nothing there (3 %) and was not kept.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from .catalog import RUNTIMES as RUNTIME_CHOICES
from .events import NULL_REPORTER


@dataclass(frozen=True)
class Runtime:
    """A way to run the model, with the conditions under which ``auto`` takes it."""

    name: str  #: the RUNTIME value
    devices: tuple[str, ...]  #: torch device types it runs on
    precisions: tuple[str, ...]  #: PRECISION values it runs
    package: str  #: module that must be importable ("" for torch itself)
    summary: str

    def runs(self, device_type: str, precision: str) -> bool:
        """Whether this runtime runs ``precision`` on a ``device_type`` device (its package aside)."""
        return device_type in self.devices and precision in self.precisions

    def installed(self) -> bool:
        return not self.package or importlib.util.find_spec(self.package) is not None


#: In order of preference; ``auto`` takes the first that runs here. The last is the reference.
RUNTIMES = (
    Runtime("openvino", ("cpu",), ("bf16", "fp32"), "openvino",
            "OpenVINO on the CPU (bf16 where the CPU has it, else fp32): the model is exported once per model, "
            "weights and tile shape, then loaded from the cache"),
    Runtime("torch", ("cpu", "cuda"), ("fp32", "bf16", "fp16"), "",
            "PyTorch eager, bf16/fp16 by autocast (the reference; the only one on GPUs)"),
)
REFERENCE = RUNTIMES[-1]
assert tuple(r.name for r in RUNTIMES) == RUNTIME_CHOICES[1:], "engine.catalog.RUNTIMES lists the table's names"


def runtime(name: str) -> Runtime:
    """The runtime of :data:`RUNTIMES` called ``name``."""
    return next(r for r in RUNTIMES if r.name == name)


def choose_runtime(requested: str, device, precision: str, reporter=NULL_REPORTER) -> Runtime:
    """The runtime of RUNTIME ``requested`` (``auto`` or a name) for ``device`` and ``precision``.

    A runtime asked for by name that cannot run here, or whose package is missing, falls back to the reference
    with a warning (auto falls back with a line of text: nothing was asked for).
    """
    candidates = RUNTIMES if requested == "auto" else (runtime(requested), REFERENCE)
    for candidate in candidates:
        if not candidate.runs(device.type, precision):
            if candidate.name == requested:
                reporter.warning(f"RUNTIME {requested} does not run {precision} on {device.type}: using "
                                 f"{REFERENCE.name} (the reference).")
            continue
        if not candidate.installed():
            say = reporter.warning if candidate.name == requested else reporter.text
            say(f"RUNTIME {candidate.name}: the package {candidate.package} is not installed in the worker "
                f"environment: using {REFERENCE.name} (install it with the plugin's environment installer).")
            continue
        return candidate
    return REFERENCE


class TorchForward:
    """The reference forward: PyTorch eager, bf16/fp16 through autocast; features as (n, dim, grid_h, grid_w)."""

    runtime = REFERENCE.name

    def __init__(self, backbone, device, precision: str):
        # deferred: torch takes seconds to import, and only the steps that compute with it need it
        import torch

        self.backbone, self.device = backbone, device
        backbone.model.to(device)
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)

    def __call__(self, x):
        # deferred: torch takes seconds to import, and only the steps that compute with it need it
        import torch

        with torch.inference_mode(), torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32,
                                                    enabled=self.autocast_dtype is not None):
            return self.backbone.features(x)


def model_forward(chosen: Runtime, backbone, device, precision: str, batch_size: int, reporter=NULL_REPORTER,
                  cache_dir=None):
    """The forward of ``chosen`` for batches of up to ``batch_size`` tiles; the reference when it cannot be built.

    ``cache_dir``: where exported models are kept (default :func:`engine.openvino_runtime.default_cache_dir`).
    """
    if chosen.name == "openvino":
        # deferred: OpenVINO is imported only when it runs the model
        from .openvino_runtime import OpenVinoForward

        try:
            return OpenVinoForward(backbone, precision, batch_size, reporter, cache_dir)
        except Exception as exc:  # torch.export and OpenVINO raise many kinds; any of them means: the reference
            detail = (str(exc).strip().splitlines() or [""])[0][:300]
            reporter.warning(f"RUNTIME openvino: {backbone.name} could not be exported ({type(exc).__name__}: "
                             f"{detail}): using {REFERENCE.name} (the reference).")
    return TorchForward(backbone, device, precision)
