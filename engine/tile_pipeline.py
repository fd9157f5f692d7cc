"""The encoder's tile pipeline: a reader thread that reads strips of tiles ahead of the model, the batch step
that normalises, resizes and runs tiles through the backbone, and the empty feature raster they fill.

:mod:`engine.encoder` drives them (plan, stream, finish).
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import numpy as np

from . import __version__
from .raster_writing import OUTPUT_OPTIONS
from .rasters import open_raster, read_padded
from .tiling import TileGrid

#: A feature cell is nodata when fewer than this fraction of its input pixels are valid.
MIN_VALID_FRACTION = 0.5


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


def create_feature_raster(path: Path, grid: TileGrid, backbone, crs, window_transform, record: dict, p) -> None:
    """An empty float32 feature GeoTIFF on the output grid (one band per feature, NaN nodata), tagged with the run."""
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
