"""The worker side of SCHEDULER: the tasks a Dask cluster's workers run (:mod:`engine.scale_out` submits them).

Model cache
    Each worker process loads the backbone once (:func:`_cached_backbone`), keyed by everything that shapes it
    (name, weights, checkpoint, band count, device, precision), and keeps the last one only.

Threads
    Dask workers run ``nthreads`` tasks at once, and their nanny sets ``OMP_NUM_THREADS=1``, so torch would run
    the model on one core. An encoding task instead sets torch's threads to the worker's ``nthreads`` and holds
    the model's lock while it runs it: one forward at a time per worker process, on all the cores the worker was
    given, while the worker's other threads read the next block's tiles (GDAL releases the GIL). Prediction
    tasks (scikit-learn) keep Dask's one BLAS thread per task and run ``nthreads`` blocks at once.

Module names
    Dask pickles task functions by module name. Cluster workers have the engine as ``iamap.engine`` (pip); the
    QGIS worker runs it as the top-level package ``engine`` from the plugin folder. The task functions are
    therefore always named ``iamap.engine.scale_out_worker.<function>`` (see
    :func:`engine.scale_out.canonical_names_for_pickling`), and everything else that crosses the wire is plain
    data (dicts, numpy arrays, fitted scikit-learn objects): errors come back as data too, never as engine
    exceptions.

Standard library only at import: a worker without the engine's packages must still unpickle
:func:`worker_report` to say which package it lacks. So the engine modules that bring numpy, torch or rasterio
are imported inside the tasks, each marked "deferred".
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time

from . import __version__
from .errors import IamapError, ParameterError

#: The name workers import the task functions by (the pip-installed engine).
CANONICAL_MODULE = "iamap.engine.scale_out_worker"


def worker_report(packages: tuple[str, ...], dask_worker=None) -> dict:
    """What a worker offers (run on every worker by :func:`engine.scale_out.check_workers`): the engine's version, which
    of ``packages`` it lacks, its threads, its GPUs and whether they (and its CPU) have bf16."""
    missing = [name for name in packages if importlib.util.find_spec(name) is None]
    report = {"engine": __version__, "missing": missing, "gpus": 0, "cuda_bf16": False, "cpu_bf16": False,
              "nthreads": dask_worker.state.nthreads if dask_worker is not None else None}
    if "torch" in packages and "torch" not in missing:
        import torch  # deferred: see the module notes (stdlib only at import)

        from .devices import cpu_has_native_bf16

        report["gpus"] = torch.cuda.device_count()
        report["cuda_bf16"] = bool(report["gpus"]) and torch.cuda.is_bf16_supported()
        report["cpu_bf16"] = cpu_has_native_bf16()
    return report


def _worker_name() -> str:
    try:
        from distributed import get_worker  # deferred: also runs outside a worker (tests), without distributed

        return get_worker().address
    except (ImportError, ValueError):
        return "this process"


def _error(exc: IamapError) -> dict:
    """A task's IamapError comes back as data, ``{"error": [parameter, message]}`` (see the module notes)."""
    parameter = getattr(exc, "parameter", "")
    message = str(exc)
    if parameter and message.startswith(f"{parameter}: "):
        message = message[len(parameter) + 2:]
    return {"error": [parameter, message]}


def encode_rows(spec: dict, first_row: int, end_row: int) -> dict:
    """Task: encode tile rows [first_row, end_row) of ``spec`` (see :func:`engine.scale_out.encoder_spec`)."""
    try:
        return _encode_rows(spec, first_row, end_row)
    except IamapError as exc:
        return _error(exc)


def map_strip(name: str, data, path: str, bands: list[int], box: tuple, row: int, height: int,
              with_inputs: bool) -> dict:
    """Task: one strip of rows through a :class:`~engine.blockwise.PixelFunction`."""
    try:
        return _map_strip(name, data, path, bands, box, row, height, with_inputs)
    except IamapError as exc:
        return _error(exc)


def _open_on_worker(path: str, open_args: dict | None = None):
    from .rasters import open_raster  # deferred: rasterio (see the module notes)

    if not os.path.exists(path):
        raise ParameterError("INPUT", f"worker {_worker_name()} cannot open {path}: no such file there. With "
                                      "SCHEDULER the input must be readable by every worker at the same path (a "
                                      "shared disk or the same copy on each machine).")
    return open_raster(path, **(open_args or {}))


_MODEL_LOCK = threading.Lock()
_MODEL: dict = {}  # {"key": ..., "backbone": LoadedBackbone, "lock": Lock}: the last model this process loaded


def _cached_backbone(model: dict):
    """The backbone of ``model`` (spec), loaded once per worker process; returns (backbone, its lock)."""
    import torch  # deferred: see the module notes (stdlib only at import)

    from .models import load_backbone

    key = tuple(sorted(model.items()))
    with _MODEL_LOCK:
        if _MODEL.get("key") != key:
            _MODEL.clear()  # one model per process: a GPU holds one
            backbone = load_backbone(model["backbone"], model["backbone_name"], model["pretrained"],
                                     model["checkpoint"], in_chans=model["in_chans"])
            backbone.model.to(torch.device(model["device"]))
            _MODEL.update(key=key, backbone=backbone, lock=threading.Lock())
        return _MODEL["backbone"], _MODEL["lock"]


def _encode_rows(spec: dict, first_row: int, end_row: int) -> dict:
    # deferred: numpy, torch and rasterio, directly and through these engine modules (see the module notes)
    import numpy as np
    import torch
    from rasterio.windows import Window

    from .normalize import Normalization
    from .tile_pipeline import TileEncoder, TileReader, encoded_batches
    from .tiling import TileGrid

    started = time.monotonic()
    grid = TileGrid(**spec["grid"])
    model = spec["model"]
    if model["checkpoint"] and not os.path.exists(model["checkpoint"]):
        raise ParameterError("CKPT", f"worker {_worker_name()} cannot open {model['checkpoint']}: with SCHEDULER the "
                                     "checkpoint must be readable by every worker at the same path.")
    with _open_on_worker(spec["input"], spec["open_args"]):
        pass
    backbone, lock = _cached_backbone(model)
    device = torch.device(model["device"])
    norm = Normalization(**spec["norm"])
    reader = TileReader(spec["input"], spec["open_args"], spec["bands"], Window(*spec["window"]), grid, first_row,
                        prefetch_tiles=2 * spec["batch_size"], end_row=end_row)
    reader.start()  # reads ahead while another block holds the model
    positions, features, cells, seen = [], [], [], 0
    try:
        with lock:
            # one forward at a time per process, on the worker's cores (its nanny set OMP_NUM_THREADS=1)
            threads = max(1, _worker_threads())
            torch.set_num_threads(threads)
            encoder = TileEncoder(backbone, device, model["precision"], norm, spec["size"], grid)
            for batch_positions, batch_features, batch_cells, batch_seen in encoded_batches(
                    reader, encoder, spec["batch_size"]):
                seen += batch_seen
                if batch_positions:
                    positions += batch_positions
                    features.append(np.moveaxis(batch_features, 1, -1))  # back to its channels-last memory
                    cells.append(batch_cells)
    finally:
        reader.stopped.set()
    dim = backbone.dim
    return {
        "positions": np.asarray(positions, np.int32).reshape(-1, 2),
        "features": np.concatenate(features) if features else np.empty((0, grid.grid_h, grid.grid_w, dim),
                                                                        np.float32),
        "cells": np.concatenate(cells) if cells else np.empty((0, grid.grid_h, grid.grid_w), bool),
        "seen": seen, "worker": _worker_name(), "device": str(device), "precision": model["precision"],
        "threads": threads, "seconds": time.monotonic() - started,
    }


def _worker_threads() -> int:
    try:
        from distributed import get_worker  # deferred: also runs outside a worker (tests), without distributed

        return get_worker().state.nthreads
    except (ImportError, ValueError):
        return os.cpu_count() or 1


def _map_strip(name: str, data, path: str, bands: list[int], box: tuple, row: int, height: int,
               with_inputs: bool) -> dict:
    # deferred: numpy and rasterio, directly and through these engine modules (see the module notes)
    import numpy as np
    from rasterio.windows import Window

    from .pixel_functions import PixelFunction
    from .rasters import read_padded

    window = Window(*box)
    with _open_on_worker(path) as src:
        data_block, valid = read_padded(src, bands, window, row, height, 0, window.width)
    pixels = data_block.reshape(len(bands), -1).T
    valid = valid.all(axis=0).ravel()
    inputs = pixels[valid]
    values = [np.asarray(v) for v in PixelFunction(name, data)(inputs)] if valid.any() else None
    return {"row": row, "height": height, "valid": valid, "values": values,
            "inputs": inputs if with_inputs else None}


#: The functions the workers run, by their canonical name (see :func:`engine.scale_out.canonical_names_for_pickling`).
TASK_FUNCTIONS = (encode_rows, map_strip, worker_report)
for _function in TASK_FUNCTIONS:
    _function.__module__ = CANONICAL_MODULE
