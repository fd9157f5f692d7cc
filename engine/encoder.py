"""The encoder tool: stream a raster through a backbone into one feature GeoTIFF.

Pipeline: a reader thread reads one strip of tiles at a time (a windowed read of ``SIZE`` rows) and queues
tiles; the main thread batches them across strip boundaries, normalises and resizes them on the device,
runs the model, and merges each tile's feature block into :class:`~engine.merge.FeatureStrip`, which hands
finished output rows to :class:`~engine.rasters.RowWriter`. Memory is bounded by a strip of tiles.

Resume: the output is written as ``<name>.partial.tif`` next to a manifest ``<name>.partial.json`` holding
the parameter hash and the rows on disk. Run again with the same parameters and it continues from there;
the final name appears only when every row is written, with a ``<name>.iamap.json`` record beside it.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import threading
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from . import __version__
from .devices import choose_device, choose_precision
from .errors import ParameterError
from .memory import check_encoder_memory
from .merge import FeatureStrip
from .normalize import resolve_normalization
from .parameters import parameter_class
from .rasters import (OUTPUT_OPTIONS, RowWriter, check_bands, check_output, extent_window, finalize, open_raster,
                      partial_path, read_padded, sidecar_path, window_transform, write_json)
from .tiling import TileGrid

#: A feature cell is nodata when fewer than this fraction of its input pixels are valid.
MIN_VALID_FRACTION = 0.5


class EncoderParams(parameter_class("encoder")):
    """The encoder's parameters (see ``engine.contract.ENCODER``); STRIDE defaults to SIZE."""

    def check(self) -> None:
        self.STRIDE = self.STRIDE or self.SIZE
        if self.STRIDE > self.SIZE:
            raise ParameterError("STRIDE", f"{self.STRIDE} must be between 1 and SIZE ({self.SIZE}): a stride larger "
                                           "than the tile would leave gaps. Use STRIDE = SIZE for no overlap.")


def params_hash(record: dict) -> str:
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:20]


def file_identity(path: str) -> dict:
    stat = os.stat(path)
    return {"path": str(Path(path).resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


class TileReader(threading.Thread):
    """Reads strips of tiles ahead of the model and queues ``(row, col, data, valid)`` items.

    ``data`` is float32 (bands, SIZE, SIZE) and ``valid`` bool (bands, SIZE, SIZE); tiles with no valid pixel
    are queued with ``data=None`` so they are counted but never run through the model. ``None`` ends the
    stream; an exception is passed through the queue to be raised in the main thread.
    """

    def __init__(self, path: str, open_args: dict, bands: list[int], window, grid: TileGrid, first_row: int,
                 prefetch_tiles: int):
        super().__init__(daemon=True)
        self.path, self.open_args, self.bands, self.window = path, open_args, bands, window
        self.grid, self.first_row = grid, first_row
        self.queue: queue.Queue = queue.Queue(maxsize=max(2 * grid.cols, prefetch_tiles))
        self.stopped = threading.Event()

    def run(self) -> None:
        g = self.grid
        try:
            with open_raster(self.path, **self.open_args) as src:
                for row in range(self.first_row, g.rows):
                    strip, valid = read_padded(src, self.bands, self.window, row * g.stride, g.size, 0,
                                               (g.cols - 1) * g.stride + g.size)
                    for col in range(g.cols):
                        x = col * g.stride
                        tile_valid = valid[:, :, x:x + g.size]
                        tile = strip[:, :, x:x + g.size] if tile_valid.any() else None
                        self._put((row, col, tile, tile_valid))
                        if self.stopped.is_set():
                            return
        except BaseException as exc:  # surfaced by the consumer
            self._put(exc)
            return
        self._put(None)

    def _put(self, item) -> None:
        while not self.stopped.is_set():
            try:
                self.queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue


def run_encoder(params: dict, reporter) -> dict:
    from .models import load_backbone

    p = EncoderParams.from_dict(params)
    output = check_output(p.OUTPUT)
    open_args = {"target_crs": p.TARGET_CRS, "resolution": p.TARGET_RESOLUTION}
    with open_raster(p.INPUT, **open_args) as src:
        bands = check_bands(src, p.BANDS)
        window = extent_window(src, p.EXTENT)
        crs, transform = src.crs, window_transform(src, window)
        input_dtype = src.dtypes[bands[0] - 1]
        reporter.text(f"Input {Path(p.INPUT).name}: {src.width}x{src.height} px, {src.count} band(s) {input_dtype}, "
                      f"{crs}; processing bands {bands} over a {window.width}x{window.height} px window.")
        backbone = load_backbone(p.BACKBONE, p.BACKBONE_NAME, p.PRETRAINED, p.CKPT, in_chans=len(bands),
                                 reporter=reporter)
        grid = TileGrid.create(window.width, window.height, p.SIZE, p.STRIDE, *backbone.grid)
        device = choose_device(p.DEVICE, p.CUDA_ID)
        precision = choose_precision(p.PRECISION, device)
        check_encoder_memory(len(bands), grid, p.BATCH_SIZE, device, backbone.input_size)
        record = {
            "tool": "encoder", "iamap_version": __version__, "input": file_identity(p.INPUT),
            "bands": bands, "window": [window.col_off, window.row_off, window.width, window.height],
            "size": p.SIZE, "stride": p.STRIDE, "model": backbone.name, "weights": backbone.weights,
            "checkpoint": file_identity(p.CKPT) if p.CKPT else None, "merge": p.MERGE_METHOD,
            "normalization": p.NORMALIZATION, "precision": precision, "target_crs": p.TARGET_CRS,
            "target_resolution": p.TARGET_RESOLUTION,
        }
        digest = params_hash(record)
        reporter.text(f"Model {backbone.name} ({backbone.weights}): input {backbone.input_size[0]}x"
                      f"{backbone.input_size[1]}, {backbone.grid[0]}x{backbone.grid[1]} cells of {backbone.dim} "
                      f"features per tile; one output pixel = {grid.cell_w:g}x{grid.cell_h:g} input pixels. "
                      f"Device {device}, {precision}, batch {p.BATCH_SIZE}.")
        if p.RESUME and _is_complete(output, digest):
            reporter.text(f"{output} is already complete for these parameters (RESUME): nothing to do.")
            return {"OUTPUT": str(output), "tiles": grid.count, "tiles_encoded": 0, "reused": True}
        norm = resolve_normalization(p.NORMALIZATION, src, bands, window, backbone)
        reporter.text(f"Normalisation {norm.describe()}")

    partial, manifest = partial_path(output), partial_path(output).with_suffix(".json")
    rows_done = _resume_point(partial, manifest, digest) if p.RESUME else 0
    if rows_done:
        reporter.text(f"Resuming: {rows_done} of {grid.out_height} output rows were already written.")
    else:
        partial.unlink(missing_ok=True)
        _create_output(partial, grid, backbone, crs, transform, record, p)

    def durable(rows: int) -> None:
        write_json(manifest, {"hash": digest, "rows_done": rows, "total_rows": grid.out_height})

    durable(rows_done)

    first_row = grid.first_row_touching(rows_done) if rows_done else 0
    writer = RowWriter(partial, next_row=rows_done, on_durable=durable)
    strip = FeatureStrip(grid, backbone.dim, p.MERGE_METHOD, first_tile_row=first_row)
    tile_encoder = TileEncoder(backbone, device, precision, norm, p.SIZE, grid)
    reader = TileReader(p.INPUT, open_args, bands, window, grid, first_row, prefetch_tiles=2 * p.BATCH_SIZE)
    reader.start()
    tile_encoder.warm_up(min(p.BATCH_SIZE, grid.count))  # while the reader starts
    total = (grid.rows - first_row) * grid.cols
    done = encoded = 0
    merged_row = first_row  # tile row being merged; rows before it are handed to the writer
    started = last_report = time.monotonic()
    finished = False
    try:
        while not finished:
            batch = []
            while len(batch) < p.BATCH_SIZE:  # batches run across tile rows: no short batch at row ends
                item = reader.queue.get()
                if item is None:
                    finished = True
                    break
                if isinstance(item, BaseException):
                    raise item
                done += 1
                if item[2] is not None:
                    batch.append(item)
            if batch:
                features, cell_valid = tile_encoder([t[2] for t in batch], [t[3] for t in batch])
                for (row, col, _, _), feats, ok in zip(batch, features, cell_valid):
                    if row != merged_row:  # tile rows before are complete: hand their finished rows out
                        writer.add(*strip.pop_rows(grid.rows_final_after(row - 1)))
                        merged_row = row
                    strip.add(feats, ok, row, col)
            encoded += len(batch)
            reporter.progress(100 * done / max(total, 1))
            now = time.monotonic()
            if now - last_report > 5 or finished:
                last_report = now
                rate = encoded / max(now - started, 1e-9)
                eta = (total - done) / rate if rate > 0 else float("nan")
                reporter.text(f"Tiles {done}/{total} ({encoded} encoded, {rate:.1f} tiles/s, ETA {eta:.0f} s)")
        writer.add(*strip.pop_rows(grid.out_height))
        writer.close()
    finally:
        reader.stopped.set()
    elapsed = time.monotonic() - started
    record.update({"params_hash": digest, "feature_dim": backbone.dim, "width": grid.out_width,
                   "height": grid.out_height, "parameters": asdict(p)})
    finalize(partial, output, record)
    manifest.unlink(missing_ok=True)
    reporter.text(f"Wrote {output}: {grid.out_width}x{grid.out_height} px, {backbone.dim} bands, "
                  f"{encoded} tiles in {elapsed:.1f} s ({encoded / max(elapsed, 1e-9):.1f} tiles/s).")
    return {"OUTPUT": str(output), "tiles": grid.count, "tiles_encoded": encoded, "seconds": round(elapsed, 3),
            "tiles_per_second": round(encoded / max(elapsed, 1e-9), 3), "feature_dim": backbone.dim,
            "reused": False}


class TileEncoder:
    """Normalises, resizes and runs tiles through the backbone on ``device`` in ``precision``."""

    def __init__(self, backbone, device, precision: str, norm, size: int, grid: TileGrid):
        import torch

        self.backbone, self.device, self.grid = backbone, device, grid
        backbone.model.to(device)
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        self.scale, self.mean, self.std = (torch.as_tensor(v, device=device).view(1, -1, 1, 1)
                                           for v in (norm.scale, norm.mean, norm.std))
        self.resize = tuple(backbone.input_size) != (size, size)

    def _forward(self, x):
        import torch

        with torch.inference_mode(), torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32,
                                                    enabled=self.autocast_dtype is not None):
            return self.backbone.features(x)

    def warm_up(self, batch_size: int) -> None:
        """One call on zeros, so kernel selection is not charged to the first tiles."""
        import torch

        self._forward(torch.zeros(batch_size, self.backbone.in_chans, *self.backbone.input_size, device=self.device))

    def __call__(self, tiles: list, valids: list) -> tuple[np.ndarray, np.ndarray]:
        """Features (n, dim, grid_h, grid_w) and cell validity (n, grid_h, grid_w) of a batch of tiles."""
        import torch
        import torch.nn.functional as F

        data = torch.from_numpy(np.stack(tiles)).to(self.device, non_blocking=True)
        valid = torch.from_numpy(np.stack(valids)).to(self.device, non_blocking=True)
        x = (data * self.scale - self.mean) / self.std
        x = torch.where(valid, x, torch.zeros((), device=self.device))  # nodata = the band mean
        if self.resize:
            x = F.interpolate(x, size=self.backbone.input_size, mode="bilinear", antialias=True, align_corners=False)
        features = self._forward(x).float().cpu().numpy()
        pixel_valid = valid.any(dim=1, keepdim=True).float()
        cell_valid = F.adaptive_avg_pool2d(pixel_valid, (self.grid.grid_h, self.grid.grid_w))
        return features, (cell_valid[:, 0] >= MIN_VALID_FRACTION).cpu().numpy()


def _create_output(path: Path, grid: TileGrid, backbone, crs, window_transform, record: dict, p: EncoderParams):
    import rasterio
    from affine import Affine

    transform = window_transform @ Affine.scale(grid.cell_w, grid.cell_h)
    profile = dict(OUTPUT_OPTIONS, width=grid.out_width, height=grid.out_height, count=backbone.dim,
                   dtype="float32", crs=crs, transform=transform, nodata=float("nan"))
    with rasterio.open(path, "w", **profile) as dst:
        dst.descriptions = tuple(f"feature {i + 1}" for i in range(backbone.dim))
        dst.update_tags(IAMAP_TOOL="encoder", IAMAP_VERSION=__version__, MODEL=backbone.name,
                        WEIGHTS=backbone.weights, TILE_SIZE=p.SIZE, STRIDE=p.STRIDE, MERGE_METHOD=p.MERGE_METHOD,
                        BANDS=",".join(map(str, record["bands"])), PRECISION=record["precision"],
                        INPUT=record["input"]["path"])


def _is_complete(output: Path, digest: str) -> bool:
    sidecar = sidecar_path(output)
    if not (output.exists() and sidecar.exists()):
        return False
    try:
        return json.loads(sidecar.read_text()).get("params_hash") == digest
    except ValueError:
        return False


def _resume_point(partial: Path, manifest: Path, digest: str) -> int:
    if not (partial.exists() and manifest.exists()):
        return 0
    try:
        state = json.loads(manifest.read_text())
    except ValueError:
        return 0
    return int(state.get("rows_done", 0)) if state.get("hash") == digest else 0
