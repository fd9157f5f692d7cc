"""The OpenVINO runtime of the encoder's model (CPU): export once, keep it in a cache, run batches.

The model's ``forward_features`` is exported (``torch.export``) for one input shape (batch, bands, height,
width) and converted by OpenVINO's PyTorch front end, in fp32 (bf16 is a compile-time choice, so one export
serves both precisions).
The export is cached in :func:`default_cache_dir` under a name hashed from :func:`artefact_key` (model, a
fingerprint of its weights, input shape, OpenVINO, torch and timm versions); the key is also written beside the
model, last, and an artefact is loaded only when that record is the key asked for, so a half-written export or
one of other weights is never used. The first run pays the export (seconds; logged), later runs read it.

The front end is called directly rather than through ``openvino.convert_model``, which sends usage data to
Intel unless the user opted out (OpenVINO's telemetry): nothing leaves the user's machine.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path

from .errors import ModelLoadError
from .events import NULL_REPORTER
from .models import feature_tensor, tokens_to_map
from .user_cache import cache_dir as user_cache_dir

#: Changes when what is cached (or how it is named) does; older artefacts are then never found.
ARTEFACT_VERSION = 1
#: PRECISION to OpenVINO's inference precision.
INFERENCE_PRECISION = {"bf16": "bf16", "fp32": "f32"}


def default_cache_dir() -> Path | None:
    """Where the runtime exports are kept (see :func:`engine.user_cache.cache_dir`)."""
    return user_cache_dir("IAMAP_RUNTIME_CACHE", "runtimes")


def weights_fingerprint(model) -> str:
    """SHA-256 of the model's state dict: names, dtypes, shapes and values."""
    # deferred: torch takes seconds to import
    import torch

    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        if tensor.numel():
            digest.update(tensor.view(-1).view(torch.uint8).numpy().data)
    return digest.hexdigest()


def artefact_key(backbone, shape: tuple[int, ...]) -> dict:
    """Everything an exported model depends on; an artefact is used only for exactly this key."""
    # deferred: these packages are imported by the runtime anyway, and only for an export
    import openvino
    import timm
    import torch

    return {"artefact_version": ARTEFACT_VERSION, "runtime": "openvino", "openvino": openvino.__version__,
            "torch": torch.__version__, "timm": timm.__version__, "model": backbone.name,
            "weights": weights_fingerprint(backbone.model), "input_shape": list(shape)}


def _artefact_stem(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]


def _features_module(model):
    """The model's ``forward_features`` as a module of one tensor output, for tracing."""
    # deferred: torch takes seconds to import
    import torch

    class Features(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return feature_tensor(self.inner.forward_features(x))

    return Features(model).eval()


def export_model(backbone, shape: tuple[int, ...]):
    """The backbone's ``forward_features`` as an OpenVINO model (fp32) for inputs of ``shape``.

    Through ``torch.export`` (TorchScript tracing, OpenVINO's other way in, is deprecated by PyTorch).
    """
    # deferred: OpenVINO and torch are imported only when this runtime runs
    import torch
    from openvino.frontend import FrontEndManager
    from openvino.frontend.pytorch.fx_decoder import TorchFXPythonDecoder

    backbone.model.to("cpu").float()
    logging.disable(logging.WARNING)  # the front end logs every PyTorch decomposition it keeps as it is
    try:
        with torch.no_grad():
            program = torch.export.export(_features_module(backbone.model), (torch.zeros(*shape),))
        decoder = TorchFXPythonDecoder.from_exported_program(program)
        front_end = FrontEndManager().load_by_framework("pytorch")
        model = front_end.convert(front_end.load(decoder))  # the decoder must live until here
    finally:
        logging.disable(logging.NOTSET)
    model.reshape({0: list(shape)})
    return model


def cached_model(backbone, shape: tuple[int, ...], cache_dir: Path | None, reporter=NULL_REPORTER):
    """The exported model from ``cache_dir`` when its key matches, else exported now (and cached); logs which."""
    # deferred: OpenVINO is imported only when this runtime runs
    import openvino

    started = time.monotonic()
    key = artefact_key(backbone, shape)
    stem = _artefact_stem(key)
    described = f"{backbone.name} for {'x'.join(map(str, shape))} inputs"
    if cache_dir is not None:
        xml, record = cache_dir / f"{stem}.xml", cache_dir / f"{stem}.json"
        try:
            matches = json.loads(record.read_text(encoding="utf-8")) == key and xml.with_suffix(".bin").is_file()
        except (OSError, ValueError):
            matches = False
        if matches:
            try:
                model = openvino.Core().read_model(str(xml))
                reporter.text(f"RUNTIME openvino: loaded the export of {described} from {cache_dir} in "
                              f"{time.monotonic() - started:.1f} s.")
                return model
            except RuntimeError as exc:
                reporter.warning(f"RUNTIME openvino: the cached export {xml} could not be read ({exc}); exporting "
                                 "again.")
    model = export_model(backbone, shape)
    spent = time.monotonic() - started
    where = "not cached (IAMAP_RUNTIME_CACHE is empty)"
    if cache_dir is not None:
        where = _store(model, key, stem, cache_dir, reporter)
    reporter.text(f"RUNTIME openvino: exported {described} in {spent:.1f} s (first run only; {where}).")
    return model


def _store(model, key: dict, stem: str, cache_dir: Path, reporter) -> str:
    """Write ``model`` and its key record (last) into ``cache_dir``; say where, or why not."""
    # deferred: OpenVINO is imported only when this runtime runs
    import openvino

    part = cache_dir / f"{stem}.partial-{os.getpid()}"
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        openvino.save_model(model, str(part.with_suffix(".xml")), compress_to_fp16=False)
        os.replace(part.with_suffix(".bin"), cache_dir / f"{stem}.bin")
        os.replace(part.with_suffix(".xml"), cache_dir / f"{stem}.xml")
        tmp = part.with_suffix(".json")
        tmp.write_text(json.dumps(key, sort_keys=True), encoding="utf-8")
        os.replace(tmp, cache_dir / f"{stem}.json")
    except (OSError, RuntimeError) as exc:
        for suffix in (".xml", ".bin", ".json"):
            part.with_suffix(suffix).unlink(missing_ok=True)
        reporter.warning(f"RUNTIME openvino: the export could not be cached in {cache_dir} ({exc}); the next run "
                         "exports it again.")
        return "not cached"
    return f"cached in {cache_dir}"


class OpenVinoForward:
    """The backbone compiled by OpenVINO for the CPU; features as (n, dim, grid_h, grid_w) like the reference.

    A batch is split into :func:`stream_split` parts run at once, one OpenVINO stream (inference request) each:
    on 2 cores, two one-thread streams of 4 tiles ran ViT-S 5 to 13 % faster than one two-thread stream of 8,
    which spends part of each layer waiting for its other thread (``benchmarks/encoder_benchmark.py``). Every part
    has one shape: a shorter last batch is padded, its padding dropped after; parts holding only padding are not
    run.
    """

    runtime = "openvino"

    def __init__(self, backbone, precision: str, batch_size: int, reporter=NULL_REPORTER, cache_dir=None):
        # deferred: OpenVINO, numpy and torch are imported only when this runtime runs
        import numpy as np
        import openvino
        import torch

        if precision not in INFERENCE_PRECISION:
            raise ModelLoadError(f"OpenVINO runs bf16 or fp32, not {precision}.")
        self.backbone = backbone
        threads = torch.get_num_threads()
        streams, part = stream_split(batch_size, threads)
        self.shape = (part, backbone.in_chans, *backbone.input_size)
        model = cached_model(backbone, self.shape, default_cache_dir() if cache_dir is None else Path(cache_dir),
                             reporter)
        config = {"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": streams, "INFERENCE_NUM_THREADS": threads,
                  "INFERENCE_PRECISION_HINT": INFERENCE_PRECISION[precision]}
        self.compiled = openvino.Core().compile_model(model, "CPU", config)
        self.requests = [self.compiled.create_infer_request() for _ in range(streams)]
        self._padded = np.zeros((streams * part, *self.shape[1:]), np.float32)

    def __call__(self, x):
        # deferred: numpy and torch are imported by the caller already
        import numpy as np
        import torch

        n, part = x.shape[0], self.shape[0]
        batch = x.detach().cpu().float().numpy()
        if n != len(self._padded):
            self._padded[:n] = batch
            batch = self._padded
        running = self.requests[:-(-n // part)]
        for i, request in enumerate(running):
            request.start_async({0: batch[i * part:(i + 1) * part]})
        for request in running:
            request.wait()
        # a copy: a request's output buffer is overwritten by its next part
        output = np.concatenate([request.get_output_tensor(0).data for request in running])[:n]
        return tokens_to_map(torch.from_numpy(output), self.backbone.model, self.backbone.dim, self.backbone.grid)


def stream_split(batch_size: int, threads: int) -> tuple[int, int]:
    """(streams, tiles per stream) for batches of ``batch_size`` on ``threads`` threads: a stream per thread, as
    many as the batch fills, each of an equal part (rounded up; no stream is left empty)."""
    part = -(-batch_size // max(1, min(batch_size, threads)))
    return -(-batch_size // part), part
