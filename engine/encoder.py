"""The encoder tool: stream a raster through a backbone into one feature GeoTIFF, in three steps.

1. :func:`plan_encoding`: parameters, input window, model, tile grid, device and precision, the record of
   everything that shapes the output and its hash, normalisation; or the finding that a complete output of
   these parameters is already there (RESUME).
2. :func:`stream_tiles`: a reader thread queues tiles strip by strip (:mod:`engine.tile_pipeline`); batches
   run across strip boundaries through the model; each tile's features merge into
   :class:`~engine.merge.FeatureStrip`, which hands finished rows to :class:`~engine.raster_writing.RowWriter`.
   Memory is bounded by a strip of tiles.
3. :func:`finish_encoding`: the partial file takes its final name, with a ``<name>.iamap.json`` record.

With SCHEDULER the tiles of step 2 are encoded by the workers of a Dask cluster (:mod:`engine.scale_out`) and
merged and written here by the same :func:`merge_batches`, so the output is the same.

Resume (:mod:`engine.resume`): the output is written as ``<name>.partial.tif`` next to a manifest
``<name>.partial.json`` (parameter hash, durable rows, checksum of the last ones). Run again with the same
parameters and it continues from the rows that read back intact; a complete output is reused only when it is
still the file that was written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from . import __version__
from .contract import ENCODER
from .destinations import ensure_space, partial_path
from .devices import choose_device, choose_precision
from .errors import ParameterError
from .events import Reporter
from .memory import check_encoder_memory
from .merge import FeatureStrip
from .models import LoadedBackbone, load_backbone
from .normalize import Normalization, resolve_normalization
from .number_lists import number_list
from .parameters import parameter_class
from .raster_writing import BackgroundRowWriter, RowWriter, check_output, finalize
from .rasters import check_bands, extent_window, open_raster, window_transform
from .resume import Manifest, reusable_output
from .runtimes import REFERENCE, choose_runtime, model_forward
from .scale_out import ENCODER_PACKAGES, EncoderCluster, cluster_client
from .tile_pipeline import MIN_VALID_FRACTION, TileEncoder, TileReader, create_feature_raster, encoded_batches
from .tiling import TileGrid, check_stride


class EncoderParams(parameter_class("encoder")):
    """The encoder's parameters (see ``engine.contract.ENCODER``); STRIDE defaults to SIZE."""

    def check(self) -> None:
        self.STRIDE = self.STRIDE or self.SIZE
        check_stride(self.SIZE, self.STRIDE)


def params_hash(record: dict) -> str:
    """A short hash of a run's record, which a resumed run must match."""
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:20]


def file_identity(path: str) -> dict:
    """What identifies an input file for RESUME: resolved path, size and modification time."""
    stat = os.stat(path)
    return {"path": str(Path(path).resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


@dataclass
class EncodingPlan:
    """Everything the streaming and finishing steps share."""

    p: EncoderParams
    output: Path
    open_args: dict
    bands: list[int]
    window: object  #: rasterio Window of EXTENT in the (possibly warped) input
    crs: object
    window_transform: object
    backbone: LoadedBackbone
    grid: TileGrid
    device: object
    precision: str
    record: dict  #: what shapes the output; its hash decides what RESUME may reuse
    digest: str
    norm: Normalization | None = None  #: None when the output is reused as it is
    reused: bool = False
    #: the model's runtime (engine.runtimes; None with SCHEDULER, whose workers run the reference)
    forward: object = None
    runtime: str = REFERENCE.name  #: not in the record's hash: runtimes agree within the cosine bound of bf16

    @property
    def partial(self) -> Path:
        return partial_path(self.output)


def run_encoder(params: dict, reporter: Reporter) -> dict:
    """The encoder tool: plan the tiles, stream them through the model, finish the feature raster.

    Returns the outputs sent in the worker's ``result`` event."""
    p = EncoderParams.from_dict(params)
    with encoder_cluster(p, reporter) as cluster:
        plan = plan_encoding(p, reporter, cluster)
        if plan.reused:
            return {"OUTPUT": str(plan.output), "tiles": plan.grid.count, "tiles_encoded": 0, "reused": True}
        manifest, rows_done = start_or_resume(plan, reporter)
        encoded, seconds = stream_tiles(plan, manifest, rows_done, reporter, cluster)
    return finish_encoding(plan, manifest, encoded, seconds, reporter)


@contextlib.contextmanager
def encoder_cluster(p: EncoderParams, reporter: Reporter):
    """The Dask cluster of SCHEDULER (:class:`engine.scale_out.EncoderCluster`), or None: this machine."""
    if not p.SCHEDULER:
        yield None
        return
    with cluster_client(p.SCHEDULER, ENCODER_PACKAGES, reporter) as (client, reports):
        yield EncoderCluster(client, reports, reporter)


def plan_encoding(p: EncoderParams, reporter: Reporter, cluster=None) -> EncodingPlan:
    """Check the input, load the model, lay out the tiles; find a complete output to reuse (RESUME).

    With ``cluster`` the device and precision are the workers' (the model is loaded here only for its shapes).
    """
    output = check_output(p.OUTPUT)
    open_args = {"target_crs": p.TARGET_CRS, "resolution": p.TARGET_RESOLUTION}
    with open_raster(p.INPUT, **open_args) as src:
        bands = check_bands(src, p.BANDS)
        window = extent_window(src, p.EXTENT)
        reporter.text(f"Input {Path(p.INPUT).name}: {src.width}x{src.height} px, {src.count} band(s) "
                      f"{src.dtypes[bands[0] - 1]}, {src.crs}; processing bands {number_list(bands)} over a "
                      f"{window.width}x{window.height} px window.")
        if p.BACKBONE_NAME and p.BACKBONE != ENCODER["BACKBONE"].default:
            reporter.warning(f"BACKBONE_NAME ({p.BACKBONE_NAME}) is used; BACKBONE ({p.BACKBONE}) is not.")
        backbone = load_backbone(p.BACKBONE, p.BACKBONE_NAME, p.PRETRAINED, p.CKPT, in_chans=len(bands),
                                 reporter=reporter)
        grid = TileGrid.create(window.width, window.height, p.SIZE, p.STRIDE, *backbone.grid)
        check_covers_a_feature(grid, "EXTENT" if p.EXTENT else "INPUT")
        if cluster is None:
            device = choose_device(p.DEVICE, p.CUDA_ID)
            precision = choose_precision(p.PRECISION, device)
            check_encoder_memory(len(bands), grid, p.BATCH_SIZE, device, backbone.input_size)
            runtime = choose_runtime(p.RUNTIME, device, precision, reporter)
        else:
            device, precision = cluster.device_and_precision(p.DEVICE, p.PRECISION)
            runtime = REFERENCE
            if p.RUNTIME not in ("auto", REFERENCE.name):
                reporter.warning(f"RUNTIME {p.RUNTIME}: with SCHEDULER the workers run {REFERENCE.name}.")
        ensure_space("OUTPUT", output, grid.out_width * grid.out_height * backbone.dim * 4, reporter)
        record = {
            "tool": "encoder", "iamap_version": __version__, "input": file_identity(p.INPUT),
            "bands": bands, "window": [window.col_off, window.row_off, window.width, window.height],
            "size": p.SIZE, "stride": p.STRIDE, "model": backbone.name, "weights": backbone.weights,
            "checkpoint": file_identity(p.CKPT) if p.CKPT else None, "merge": p.MERGE_METHOD,
            "normalization": p.NORMALIZATION, "precision": precision, "target_crs": p.TARGET_CRS,
            "target_resolution": p.TARGET_RESOLUTION, "output_format": p.OUTPUT_FORMAT,
        }
        plan = EncodingPlan(p, output, open_args, bands, window, src.crs, window_transform(src, window), backbone,
                            grid, device, precision, record, params_hash(record))
        reporter.text(f"Model {backbone.name} ({backbone.weights}): input {backbone.input_size[0]}x"
                      f"{backbone.input_size[1]}, {backbone.grid[0]}x{backbone.grid[1]} cells of {backbone.dim} "
                      f"features per tile; one output pixel = {grid.cell_w:g}x{grid.cell_h:g} input pixels. "
                      f"Device {device}, {precision}, runtime {runtime.name}, batch {p.BATCH_SIZE}.")
        if p.RESUME:
            plan.reused, change = reusable_output(output, plan.digest)
            if plan.reused:
                reporter.text(f"{output} is already complete for these parameters (RESUME): nothing to do.")
                return plan
            if change:
                reporter.warning(f"OUTPUT {output.name} was written with these parameters, but {change}: encoding "
                                 "it again.")
        plan.norm = resolve_normalization(p.NORMALIZATION, src, bands, window, backbone)
        reporter.text(f"Normalisation {plan.norm.describe()}")
    if cluster is None:  # after the reuse check: an export costs seconds the first time
        plan.forward = model_forward(runtime, backbone, device, precision, p.BATCH_SIZE, reporter)
        plan.runtime = plan.forward.runtime
    return plan


def check_covers_a_feature(grid: TileGrid, parameter: str) -> None:
    """Refuse an area too thin for one valid feature: a cell needs :data:`MIN_VALID_FRACTION` of its input pixels
    (a 256x1 px raster would otherwise give an output of nodata only). ``parameter`` names the area (INPUT or
    EXTENT); SIZE is named instead when the tiles are larger than the whole area."""
    least_w, least_h = (math.ceil(cell * MIN_VALID_FRACTION) for cell in (grid.cell_w, grid.cell_h))
    if grid.width >= least_w and grid.height >= least_h:
        return
    largest_size = int(min(grid.width * grid.grid_w, grid.height * grid.grid_h) / MIN_VALID_FRACTION)
    fix = f"a SIZE of {largest_size} or less" if largest_size >= max(grid.grid_h, grid.grid_w) else "a larger area"
    what = "raster" if parameter == "INPUT" else "extent's window of the raster"
    cells = (f"one output pixel covers {grid.cell_w:g}x{grid.cell_h:g} input pixels ({grid.grid_w}x{grid.grid_h} "
             "features per tile) and needs at least half of them")
    if grid.size > max(grid.width, grid.height):
        raise ParameterError("SIZE", f"{grid.size} px is larger than the {grid.width}x{grid.height} px {what}: "
                                     f"{cells}, so no feature would be valid. Use {fix}.")
    raise ParameterError(parameter, f"the {what} is {grid.width}x{grid.height} px, too small to encode with "
                                    f"SIZE={grid.size}: {cells}, so at least {least_w} px wide and {least_h} px "
                                    f"high. Give a larger {'raster' if parameter == 'INPUT' else 'extent'}, or use "
                                    f"{fix}.")


def start_or_resume(plan: EncodingPlan, reporter: Reporter) -> tuple[Manifest, int]:
    """The partial file to write into and the output rows already durable in it (0: a new file)."""
    manifest = Manifest(plan.partial, plan.digest, plan.grid.out_height, plan.record)
    rows_done, last_chunk, problem = manifest.resume_point() if plan.p.RESUME else (0, None, "")
    if rows_done:
        reporter.text(f"Resuming: {rows_done} of {plan.grid.out_height} output rows were already written.")
    else:
        if problem:
            reporter.warning(f"The interrupted run's {plan.partial.name} cannot be continued: {problem}. "
                             "Starting over.")
        plan.partial.unlink(missing_ok=True)
        create_feature_raster(plan.partial, plan.grid, plan.backbone, plan.crs, plan.window_transform, plan.record,
                              plan.p, runtime=plan.runtime)
    manifest.write(rows_done, last_chunk)
    return manifest, rows_done


def stream_tiles(plan: EncodingPlan, manifest: Manifest, rows_done: int, reporter: Reporter,
                 cluster=None) -> tuple[int, float]:
    """Encode every tile from the resume point on and write the merged rows; returns (tiles encoded, seconds).

    The tiles are encoded here (a reader thread and :class:`TileEncoder`) or, with ``cluster``
    (:class:`engine.scale_out.EncoderCluster`), by its workers; either way they are merged and written here, in
    order, by :func:`merge_batches`.
    """
    p, grid = plan.p, plan.grid
    first_row = grid.first_row_touching(rows_done) if rows_done else 0
    rows = RowWriter(plan.partial, next_row=rows_done, on_durable=lambda done: manifest.write(done, rows.last_chunk))
    writer = BackgroundRowWriter(rows)
    strip = FeatureStrip(grid, plan.backbone.dim, p.MERGE_METHOD, first_tile_row=first_row)
    if cluster is None:
        tile_encoder = TileEncoder(plan.backbone, plan.device, plan.precision, plan.norm, p.SIZE, grid,
                                   forward=plan.forward)
        reader = TileReader(p.INPUT, plan.open_args, plan.bands, plan.window, grid, first_row,
                            prefetch_tiles=2 * p.BATCH_SIZE)
        reader.start()
        tile_encoder.warm_up(min(p.BATCH_SIZE, grid.count))  # while the reader starts
        batches, stop = encoded_batches(reader, tile_encoder, p.BATCH_SIZE), reader.stopped.set
    else:
        batches = cluster.batches(plan, first_row)
        stop = batches.close
    progress = Throughput((grid.rows - first_row) * grid.cols, reporter)
    try:
        merge_batches(batches, grid, strip, writer, progress, first_row)
        writer.close()
    finally:
        stop()
        writer.stop()
    return progress.encoded, progress.elapsed


def merge_batches(batches, grid: TileGrid, strip: FeatureStrip, writer, progress: Throughput,
                  first_row: int) -> None:
    """Merge the tiles of ``batches`` (as :func:`encoded_batches` yields them, in reading order) into ``strip``
    and hand the finished output rows to ``writer``, up to the last row."""
    merged_row = first_row  # tile row being merged; rows before it are handed to the writer
    for positions, features, cell_valid, seen in batches:
        for (row, col), feats, ok in zip(positions, features if positions else (), cell_valid if positions else ()):
            if row != merged_row:  # tile rows before are complete: hand their finished rows out
                writer.add(*strip.pop_rows(grid.rows_final_after(row - 1)))
                merged_row = row
            strip.add(feats, ok, row, col)
        progress.update(seen, len(positions), False)
    progress.update(0, 0, True)
    writer.add(*strip.pop_rows(grid.out_height))


class Throughput:
    """Progress, rate and ETA of the tiles of a run, reported every 5 s and at the end."""

    def __init__(self, total: int, reporter: Reporter):
        self.total, self.reporter = total, reporter
        self.done = self.encoded = 0
        self.started = self.last_report = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def update(self, seen: int, encoded: int, finished: bool) -> None:
        self.done += seen
        self.encoded += encoded
        self.reporter.progress(100 * self.done / max(self.total, 1))
        now = time.monotonic()
        if now - self.last_report > 5 or finished:
            self.last_report = now
            rate = self.encoded / max(now - self.started, 1e-9)
            eta = (self.total - self.done) / rate if rate > 0 else float("nan")
            self.reporter.text(f"Tiles {self.done}/{self.total} ({self.encoded} encoded, {rate:.1f} tiles/s, "
                               f"ETA {eta:.0f} s)")


def finish_encoding(plan: EncodingPlan, manifest: Manifest, encoded: int, seconds: float, reporter: Reporter) -> dict:
    """Give the complete partial file its final name and record; return the tool's outputs."""
    grid, dim = plan.grid, plan.backbone.dim
    record = {**plan.record, "params_hash": plan.digest, "runtime": plan.runtime, "feature_dim": dim,
              "width": grid.out_width, "height": grid.out_height, "parameters": asdict(plan.p)}
    try:
        finalize(plan.partial, plan.output, record)
    except ParameterError:  # nothing but nodata: the partial file is gone, so is what would resume it
        manifest.remove()
        raise
    manifest.remove()
    rate = encoded / max(seconds, 1e-9)
    reporter.text(f"Wrote {plan.output}: {grid.out_width}x{grid.out_height} px, {dim} bands, {encoded} tiles in "
                  f"{seconds:.1f} s ({rate:.1f} tiles/s).")
    return {"OUTPUT": str(plan.output), "tiles": grid.count, "tiles_encoded": encoded, "seconds": round(seconds, 3),
            "tiles_per_second": round(rate, 3), "feature_dim": dim, "runtime": plan.runtime,
            "reused": False}
