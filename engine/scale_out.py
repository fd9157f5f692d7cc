"""The client side of SCHEDULER: the heavy steps on a Dask cluster (encoding tiles, mapping every pixel).

This process is the Dask *client*. It splits the work into blocks of rows, submits them, and takes the results
back **in order**: the encoder's tile features go into the same :class:`~engine.merge.FeatureStrip` and row
writer as on one machine (:func:`engine.encoder.merge_batches`), the predictions into the same strip writer
(:func:`engine.blockwise.apply_to_rasters`). So the output is the single-machine output, overlapping tiles need no
halo logic (a block returns raw per-tile features; merging happens here), and only this process writes: a
block that Dask runs twice (a worker died) is still merged and written once.

Workers
    Start a scheduler with ``dask scheduler`` and, on each machine, ``dask worker tcp://HOST:8786`` after
    ``pip install -c constraints.txt <plugin folder>`` (the package ``iamap.engine``). The input raster (and a
    checkpoint) must be readable by every worker at the same path. GPU workers: one worker process per GPU,
    started with ``CUDA_VISIBLE_DEVICES=N dask worker tcp://HOST:8786 --nworkers 1 --resources GPU=1``; with
    DEVICE cuda (or auto when workers advertise GPUs) every encoding task asks for ``{"GPU": 1}``, so a GPU runs
    one model at a time and each worker uses its ``cuda:0``.

Order, retries, resume
    At most :data:`IN_FLIGHT_PER_WORKER` blocks per worker are submitted ahead (earlier blocks first, by
    priority); the client waits for the oldest, so the reorder buffer is bounded by the blocks in flight.
    Tasks have ``retries``; a block whose worker dies is recomputed by Dask elsewhere. On resume only the blocks
    from the first tile row that touches an undurable output row are submitted.

Cancel
    QGIS cancels by killing this process. Its connection to the scheduler then closes, and the scheduler
    releases every future this client held: queued blocks are never run, results are dropped. A run that ends
    (error included) cancels its futures and closes the client itself (:func:`cluster_client`).

Worker side
    The tasks the workers run, their model cache and threads, and why they are pickled by a canonical module
    name, are :mod:`engine.scale_out_worker`'s.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import sys
import types
import uuid
from collections import deque

from . import __version__, scale_out_worker
from .errors import IamapError, ParameterError
from .scale_out_worker import CANONICAL_MODULE, encode_rows, map_strip, worker_report
from .scheduler import CONNECT_SECONDS, check_scheduler, start_hint

#: Blocks submitted ahead per worker: one running, one queued, so a worker never waits for the client.
IN_FLIGHT_PER_WORKER = 2
#: Times Dask re-runs a block that raised (a worker that dies is handled by Dask's allowed-failures).
RETRIES = 3
#: Packages a worker needs for each kind of task (import names).
ENCODER_PACKAGES = ("numpy", "rasterio", "torch", "timm")
PREDICTION_PACKAGES = ("numpy", "rasterio", "sklearn")


@contextlib.contextmanager
def cluster_client(text: str, packages: tuple[str, ...], reporter):
    """A connected Dask client whose every worker has ``packages``; yields (client, {worker: report}).

    Closing it (the run ended, or failed) releases every future it holds on the scheduler.
    """
    address = check_scheduler(text)
    with canonical_names_for_pickling():
        client = _connect(address)
        try:
            reports = check_workers(client, address, packages, reporter)
            yield client, reports
        finally:
            client.close()


def _connect(address: str):
    """A Dask client connected to ``address``; a failed handshake is a ParameterError naming SCHEDULER.

    Whatever the peer sent, the failure is the address's: garbage read as a frame length makes Dask allocate
    from it (a MemoryError that is no lack of memory), and undecodable frames raise msgpack's errors, which Dask
    also logs with a traceback (silenced here: the message below says it). A Client whose start fails is never
    returned, yet its ``__del__`` would wait 10 s to close a connection that never opened and print a traceback:
    it is marked closed, its event loop stopped, when the start fails.
    """
    import logging

    from distributed import Client  # deferred: the tools import this module; only a SCHEDULER run needs Dask

    class ClosingClient(Client):
        def start(self, **kwargs):
            try:
                super().start(**kwargs)
            except BaseException:
                with contextlib.suppress(Exception):
                    self._loop_runner.stop()
                self.status = "closed"
                raise

    log = logging.getLogger("distributed.protocol")
    level, log.level = log.level, logging.CRITICAL + 1
    try:
        return ClosingClient(address, timeout=CONNECT_SECONDS, set_as_default=False, name="iamap")
    except Exception as exc:  # see the docstring: any failure here is the peer's
        raise ParameterError("SCHEDULER", f"{address} answers but is not a Dask scheduler, or did not accept the "
                                          f"connection ({type(exc).__name__}: {exc}). " + start_hint(address)) from None
    finally:
        log.level = level


def check_workers(client, address: str, packages: tuple[str, ...], reporter) -> dict:
    """Probe every worker (``client.run``): the engine, ``packages``, threads, GPUs. Raises a ParameterError
    naming each worker that cannot run the tasks and what it lacks."""
    workers = client.scheduler_info(n_workers=-1)["workers"]
    if not workers:
        raise ParameterError("SCHEDULER", f"the scheduler at {address} has no workers: start them with "
                                          f"\u201cdask worker {address}\u201d on each machine.")
    answers = client.run(worker_report, packages, on_error="return")
    problems, reports = [], {}
    for worker, answer in sorted(answers.items()):
        if isinstance(answer, BaseException):
            # an import error while unpickling comes back as a plain Exception naming it
            missing = re.search(r"No module named '([^']+)'", str(answer))
            missing = missing.group(1) if missing else ""
            if missing.startswith("iamap"):
                problems.append(f"worker {worker} lacks the IAMAP engine (the package iamap.engine)")
            elif missing:
                problems.append(f"worker {worker} lacks the package {missing.split('.')[0]}")
            else:
                problems.append(f"worker {worker} cannot run IAMAP's tasks: {type(answer).__name__}: {answer}")
            continue
        if answer["missing"]:
            problems.append(f"worker {worker} lacks the package(s) {', '.join(answer['missing'])}")
        answer["resources"] = workers.get(worker, {}).get("resources", {})
        reports[worker] = answer
    if problems:
        raise ParameterError("SCHEDULER", "; ".join(problems) + ". Install the engine and its packages on every "
                                          "worker: pip install -c constraints.txt <IAMAP plugin folder>.")
    other = sorted({r["engine"] for r in reports.values()} - {__version__})
    if other:
        reporter.warning(f"SCHEDULER: some workers run IAMAP engine {', '.join(other)}, this one {__version__}: "
                         "install the same version everywhere for the same results.")
    threads = sum(r["nthreads"] or 1 for r in reports.values())
    reporter.text(f"Dask scheduler {address}: {len(reports)} worker(s), {threads} thread(s)"
                  + (f", {sum(1 for r in reports.values() if r['resources'].get('GPU'))} with a GPU resource"
                     if any(r["resources"].get("GPU") for r in reports.values()) else "") + ".")
    return reports


def _ordered_results(client, submit, starts, in_flight: int):
    """Submit ``submit(start)`` for each start, at most ``in_flight`` ahead, and yield the results in order.

    Waiting for the oldest block is the reorder buffer: later blocks finish meanwhile and wait, on their
    workers, to be fetched. Pending futures are cancelled when the caller stops early.
    """
    starts = iter(starts)
    pending: deque = deque()
    try:
        for start in starts:
            pending.append(submit(start))
            if len(pending) >= in_flight:
                break
        while pending:
            result = pending.popleft().result()
            following = next(starts, None)
            if following is not None:
                pending.append(submit(following))
            if isinstance(result, dict) and result.get("error"):
                parameter, message = result["error"]
                raise ParameterError(parameter, message) if parameter else IamapError(message)
            yield result
    finally:
        if pending:
            client.cancel(list(pending), force=True)


# The encoder --------------------------------------------------------------------------------------------------


class EncoderCluster:
    """The encoder's view of the cluster: the device and precision its workers run, and the encoded tiles."""

    def __init__(self, client, reports: dict, reporter):
        self.client, self.reports, self.reporter = client, reports, reporter
        self.gpu_workers = [w for w, r in reports.items() if r["resources"].get("GPU")]

    def device_and_precision(self, device: str, precision: str):
        """DEVICE and PRECISION as the workers will run them, the same on every worker (same output whichever
        worker encodes a block): cuda when asked for, or with auto when workers advertise a GPU resource."""
        import torch  # deferred: this module is imported by the estimator tools too, which never need torch

        use_gpu = device == "cuda" or (device == "auto" and bool(self.gpu_workers))
        if use_gpu and not self.gpu_workers:
            raise ParameterError("DEVICE", "cuda was asked for but no worker of the cluster advertises a GPU: start "
                                           "one worker per GPU with \u201cdask worker ADDRESS --nworkers 1 "
                                           "--resources GPU=1\u201d, or use DEVICE cpu.")
        if use_gpu and any(not self.reports[w]["gpus"] for w in self.gpu_workers):
            bad = [w for w in self.gpu_workers if not self.reports[w]["gpus"]]
            raise ParameterError("DEVICE", f"worker(s) {', '.join(bad)} advertise a GPU resource but PyTorch sees no "
                                           "CUDA GPU there.")
        chosen = torch.device("cuda" if use_gpu else "cpu")
        if precision == "fp16" and not use_gpu:
            raise ParameterError("PRECISION", "fp16 is for GPUs; on a CPU use bf16 or fp32.")
        if precision == "auto":
            workers = self.gpu_workers if use_gpu else list(self.reports)
            if use_gpu:
                precision = "bf16" if all(self.reports[w]["cuda_bf16"] for w in workers) else "fp16"
            else:
                precision = "bf16" if all(self.reports[w]["cpu_bf16"] for w in workers) else "fp32"
        return chosen, precision

    def batches(self, plan, first_row: int):
        """(positions, features, cell validity, tiles seen) per block of tile rows from ``first_row``, in order
        (see :func:`engine.encoder.merge_batches`)."""
        import numpy as np  # deferred: as torch above

        grid, p = plan.grid, plan.p
        spec = encoder_spec(plan)
        workers = len(self.gpu_workers) if plan.device.type == "cuda" else len(self.reports)
        block_rows = encoder_block_rows(grid, p.BATCH_SIZE)
        token = uuid.uuid4().hex[:12]
        resources = {"GPU": 1} if plan.device.type == "cuda" else None
        # in a list: one future (a dict alone would be scattered key by key)
        [spec_future] = self.client.scatter([spec], broadcast=True, hash=False)

        def submit(start):
            return self.client.submit(encode_rows, spec_future, start, min(start + block_rows, grid.rows),
                                      key=f"iamap-encode-{token}-{start}", retries=RETRIES, resources=resources,
                                      priority=-start, pure=False)

        self.reporter.text(f"Encoding on the cluster: blocks of {block_rows} tile row(s) "
                           f"({block_rows * grid.cols} tiles), {IN_FLIGHT_PER_WORKER} per worker in flight.")
        seen_workers = set()
        for result in _ordered_results(self.client, submit, range(first_row, grid.rows, block_rows),
                                       IN_FLIGHT_PER_WORKER * max(1, workers)):
            if result["worker"] not in seen_workers:
                seen_workers.add(result["worker"])
                self.reporter.text(f"Worker {result['worker']}: {result['device']}, {result['precision']}, "
                                   f"{result['threads']} torch thread(s).")
            features = result["features"]  # channels-last (n, grid_h, grid_w, dim)
            yield ([tuple(rc) for rc in result["positions"].tolist()], np.moveaxis(features, -1, 1),
                   result["cells"], result["seen"])


def encoder_block_rows(grid, batch_size: int) -> int:
    """Tile rows per block: enough tiles for two model batches, at most 8 rows (the memory of a block's
    features on the worker and in transfer grows with it)."""
    return max(1, min(8, -(-2 * batch_size // grid.cols)))


def encoder_spec(plan) -> dict:
    """What a worker needs to encode blocks of this plan, as plain data."""
    import numpy as np  # deferred: as torch above

    p, w = plan.p, plan.window
    device = "cuda:0" if plan.device.type == "cuda" else "cpu"
    return {
        "input": p.INPUT, "open_args": dict(plan.open_args), "bands": list(plan.bands),
        "window": (int(w.col_off), int(w.row_off), int(w.width), int(w.height)),
        "grid": dataclasses.asdict(plan.grid), "size": p.SIZE, "batch_size": p.BATCH_SIZE,
        "model": {"backbone": p.BACKBONE, "backbone_name": p.BACKBONE_NAME, "pretrained": bool(p.PRETRAINED),
                  "checkpoint": p.CKPT or "", "checkpoint_identity": repr(plan.record.get("checkpoint")),
                  "in_chans": len(plan.bands), "device": device, "precision": plan.precision},
        "norm": {"mode": plan.norm.mode, **{k: np.asarray(getattr(plan.norm, k), np.float64)
                                            for k in ("scale", "mean", "std")}},
    }


# The block-wise prediction ------------------------------------------------------------------------------------


def cluster_strips(client, reports: dict, function, path: str, bands: list[int], window, rows: int,
                   with_inputs: bool, reporter):
    """(first row, height, valid, inputs, values) per strip of ``rows`` rows of ``window``, in order, computed
    by the workers (see :func:`engine.blockwise.apply_to_rasters`). ``function`` is a
    :class:`~engine.blockwise.PixelFunction`: its data goes to every worker once. ``inputs`` is None unless
    ``with_inputs`` (a figure needs them: they travel back with the values)."""
    token = uuid.uuid4().hex[:12]
    [data] = client.scatter([function.data], broadcast=True, hash=False)  # in a list: one future
    box = (int(window.col_off), int(window.row_off), int(window.width), int(window.height))

    def submit(row):
        return client.submit(map_strip, function.name, data, path, list(bands), box, row,
                             min(rows, window.height - row), with_inputs, key=f"iamap-map-{token}-{row}",
                             retries=RETRIES, priority=-row, pure=False)

    reporter.text(f"Mapping the pixels on the cluster: strips of {rows} row(s), {IN_FLIGHT_PER_WORKER} per worker "
                  "in flight.")
    threads = sum(r["nthreads"] or 1 for r in reports.values())
    for result in _ordered_results(client, submit, range(0, window.height, rows),
                                   IN_FLIGHT_PER_WORKER * max(1, threads)):
        yield result["row"], result["height"], result["valid"], result["inputs"], result["values"]


def canonical_names_for_pickling():
    """Name the task functions ``iamap.engine.scale_out_worker.*`` in this process, whatever its layout.

    Pickle stores a function as (module, name) and checks, when pickling, that the module imported by that name holds
    that very function. Loaded as ``engine.scale_out_worker`` (the plugin folder), the task functions say they are
    ``iamap.engine.scale_out_worker``'s (set once, in that module), and while a client is open this module is also
    entered in ``sys.modules`` under that name, with placeholder parents where there are none (removed afterwards: the
    plugin folder's own ``iamap`` module is QGIS's). The workers import the real ``iamap.engine.scale_out_worker``.
    Nothing else of the engine crosses the wire by name.
    """
    if scale_out_worker.__name__ == CANONICAL_MODULE:
        return contextlib.nullcontext()
    return _registered({"iamap": None, "iamap.engine": None, CANONICAL_MODULE: scale_out_worker})


@contextlib.contextmanager
def _registered(modules: dict):
    added = []
    for name, module in modules.items():
        if name not in sys.modules:
            if module is None:
                module = types.ModuleType(name, "Placeholder: IAMAP's engine under its installed name.")
                module.__path__ = []
            sys.modules[name] = module
            added.append(name)
    try:
        yield
    finally:
        for name in reversed(added):
            sys.modules.pop(name, None)
