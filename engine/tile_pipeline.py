"""The encoder's tile pipeline: a reader thread that reads strips of tiles ahead of the model, the batch step
that normalises, resizes and runs tiles through the backbone, and the empty feature raster they fill.

:mod:`engine.encoder` drives them (plan, stream, finish).

Where the time goes (see ``benchmarks/encoder_benchmark.py``, whose null-model mode measures everything but the
model): tiles stay in the raster's own data type (uint8 is a quarter of float32) until the batch step converts,
normalises and masks them in one pass on the model's device; full-resolution validity masks exist only for
tiles that touch nodata or the raster's edge, so the usual tile costs no mask at all; features leave the model
channels-last (each output pixel's features contiguous, as the pixel-interleaved GeoTIFF stores them), so merging
and writing copy whole feature vectors.

Threads: the reader and writer threads spend their time in GDAL and numpy, which release the GIL; the model's
forward keeps torch's intra-op threads (one per core). The small per-batch operations around it (conversion,
normalisation, masking, the features' copy) run on one torch thread on a CPU: spread over an OpenMP team they
must wait for every core, and a core busy with the reader, the writer or another program turns a 0.3 ms step
into 30 ms (measured on 2 cores).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

from . import __version__
from .catalog import OUTPUT_FORMATS
from .rasters import open_raster, read_padded_native
from .runtimes import TorchForward
from .tiling import TileGrid

#: A feature cell is nodata when fewer than this fraction of its input pixels are valid.
MIN_VALID_FRACTION = 0.5


class TileReader(threading.Thread):
    """Reads strips of tiles ahead of the model and queues ``(row, col, data, valid)`` items.

    ``data`` is (bands, SIZE, SIZE) in the raster's data type; ``valid`` is None when every pixel of the tile
    is valid, else bool (bands, SIZE, SIZE). Tiles with no valid pixel are queued with ``data=None`` so they
    are counted but never run through the model. ``None`` ends the stream; an exception is passed through the
    queue to be raised in the main thread.
    """

    def __init__(self, path: str, open_args: dict, bands: list[int], window, grid: TileGrid, first_row: int,
                 prefetch_tiles: int, end_row: int | None = None):
        super().__init__(daemon=True)
        self.path, self.open_args, self.bands, self.window = path, open_args, bands, window
        self.grid, self.first_row = grid, first_row
        self.end_row = grid.rows if end_row is None else end_row  #: tile rows [first_row, end_row) are read
        self.queue: queue.Queue = queue.Queue(maxsize=max(2 * grid.cols, prefetch_tiles))
        self.stopped = threading.Event()

    def run(self) -> None:
        g = self.grid
        try:
            with open_raster(self.path, **self.open_args) as src:
                for row in range(self.first_row, self.end_row):
                    strip, valid = read_padded_native(src, self.bands, self.window, row * g.stride, g.size, 0,
                                                      (g.cols - 1) * g.stride + g.size)
                    for col in range(g.cols):
                        x = col * g.stride
                        tile, tile_valid = strip[:, :, x:x + g.size], None
                        if valid is not None:
                            tile_valid = valid[:, :, x:x + g.size]
                            if tile_valid.all():
                                tile_valid = None
                            elif not tile_valid.any():
                                tile = None
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


def cell_validity(valid: np.ndarray, grid_h: int, grid_w: int, inside: tuple[int, int] | None = None) -> np.ndarray:
    """Which feature cells of a tile are valid: at least :data:`MIN_VALID_FRACTION` of their pixels have a valid
    band. ``valid`` is bool (bands, H, W); cells are the bins of adaptive average pooling (which may overlap by a
    pixel when H is not a multiple of ``grid_h``), counted exactly with an integral image.

    ``inside`` (rows, columns from the top-left corner) is the part of the tile inside the raster, the rest being
    padding: a cell across the raster's edge is judged on its pixels inside (a cell that hangs over the edge is not
    nodata for that), a cell wholly in the padding is invalid."""
    pixel = valid.any(axis=0)
    h, w = pixel.shape
    integral = np.zeros((h + 1, w + 1), np.int64)
    integral[1:, 1:] = pixel.cumsum(0).cumsum(1)
    r0, r1 = (np.arange(grid_h) * h) // grid_h, -((-(np.arange(grid_h) + 1) * h) // grid_h)
    c0, c1 = (np.arange(grid_w) * w) // grid_w, -((-(np.arange(grid_w) + 1) * w) // grid_w)
    count = (integral[np.ix_(r1, c1)] - integral[np.ix_(r0, c1)] - integral[np.ix_(r1, c0)]
             + integral[np.ix_(r0, c0)])
    rows_in, cols_in = inside if inside is not None else (h, w)
    area = np.outer(np.clip(np.minimum(r1, rows_in) - r0, 0, None), np.clip(np.minimum(c1, cols_in) - c0, 0, None))
    return (area > 0) & (count >= MIN_VALID_FRACTION * area)


class TileEncoder:
    """Normalises, masks, resizes and runs tiles through the backbone on ``device`` in ``precision``.

    ``forward``: the model's runtime (:func:`engine.runtimes.model_forward`); default the reference,
    :class:`engine.runtimes.TorchForward`.
    """

    def __init__(self, backbone, device, precision: str, norm, size: int, grid: TileGrid, forward=None):
        # deferred: torch takes seconds to import, and only the steps that compute with it need it
        import torch

        self.backbone, self.device, self.grid = backbone, device, grid
        self._forward = forward or TorchForward(backbone, device, precision)
        # (x * scale - mean) / std as one multiply-add: x * gain + offset
        gain = np.asarray(norm.scale, np.float64) / np.asarray(norm.std, np.float64)
        offset = -np.asarray(norm.mean, np.float64) / np.asarray(norm.std, np.float64)
        self.gain, self.offset = (torch.as_tensor(v, dtype=torch.float32, device=device).view(1, -1, 1, 1)
                                  for v in (gain, offset))
        self.resize = tuple(backbone.input_size) != (size, size)
        self._stacked: np.ndarray | None = None  # reused from batch to batch (same shape)
        self._inputs = None

    def warm_up(self, batch_size: int) -> None:
        """One call on zeros, so kernel selection is not charged to the first tiles."""
        # deferred: torch takes seconds to import, and only the steps that compute with it need it
        import torch

        self._forward(torch.zeros(batch_size, self.backbone.in_chans, *self.backbone.input_size, device=self.device))

    def _batch_tensor(self, tiles: list):
        """The tiles as one float32 (n, bands, H, W) tensor on the device, converted from their own data type."""
        # deferred: torch takes seconds to import, and only the steps that compute with it need it
        import torch

        shape = (len(tiles), *tiles[0].shape)
        if self._stacked is None or self._stacked.shape != shape or self._stacked.dtype != tiles[0].dtype:
            self._stacked = np.empty(shape, tiles[0].dtype)
            self._inputs = torch.empty(shape, dtype=torch.float32, device=self.device)
        np.stack(tiles, out=self._stacked)
        raw = torch.from_numpy(self._stacked)
        if self.device.type == "cuda":
            raw = raw.pin_memory().to(self.device, non_blocking=True)
        return self._inputs.copy_(raw)

    def __call__(self, tiles: list, valids: list, insides: list | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Features (n, dim, grid_h, grid_w) and cell validity (n, grid_h, grid_w) of a batch of tiles.

        ``valids[i]`` is None when every pixel of tile ``i`` is valid; ``insides[i]`` the part of it inside the
        raster (see :func:`cell_validity`; default: all of it). Invalid pixels take the band mean (0 after
        normalisation). The features are a channels-last array seen as (n, dim, grid_h, grid_w).
        """
        # deferred: torch takes seconds to import, and only the steps that compute with it need it
        import torch
        from torch.nn import functional

        cells = np.ones((len(tiles), self.grid.grid_h, self.grid.grid_w), bool)
        with self._single_thread():
            x = self._batch_tensor(tiles)
            x.mul_(self.gain).add_(self.offset)
            masked = [i for i, v in enumerate(valids) if v is not None]
            if masked:
                mask = torch.from_numpy(np.stack([valids[i] for i in masked])).to(self.device)
                index = torch.as_tensor(masked, device=self.device)
                x[index] = torch.where(mask, x[index], torch.zeros((), device=self.device))
                for i in masked:
                    cells[i] = cell_validity(valids[i], self.grid.grid_h, self.grid.grid_w,
                                             insides[i] if insides else None)
        if self.resize:  # a real computation: all threads
            x = functional.interpolate(x, size=self.backbone.input_size, mode="bilinear", antialias=True,
                                       align_corners=False)
        features = self._forward(x)
        with self._single_thread():
            features = features.permute(0, 2, 3, 1).float().contiguous().cpu().numpy()
        return features.transpose(0, 3, 1, 2), cells

    def _single_thread(self):
        """One torch thread for the small steps on a CPU (see the module's notes); nothing changes on a GPU."""
        return single_torch_thread() if self.device.type == "cpu" else contextlib.nullcontext()


def encoded_batches(reader: TileReader, tile_encoder: TileEncoder, batch_size: int):
    """(positions, features, cell validity, tiles seen) per model batch of the reader's tiles, in reading order.

    ``positions`` are the (tile row, tile column) of the encoded tiles; ``seen`` also counts the tiles without
    data, which are never run through the model (a batch may then hold no tile).
    """
    finished = False
    while not finished:
        batch, seen, finished = next_batch(reader, batch_size)
        if batch:
            features, cell_valid = tile_encoder([t[2] for t in batch], [t[3] for t in batch],
                                                [reader.grid.inside(t[0], t[1]) for t in batch])
            yield [(t[0], t[1]) for t in batch], features, cell_valid, seen
        elif seen:
            yield [], None, None, seen


def next_batch(reader: TileReader, size: int) -> tuple[list, int, bool]:
    """Up to ``size`` tiles with data from the reader, across tile rows (no short batch at row ends).

    Returns (tiles, tiles taken from the queue including empty ones, whether the stream ended).
    """
    batch, seen = [], 0
    while len(batch) < size:
        item = reader.queue.get()
        if item is None:
            return batch, seen, True
        if isinstance(item, BaseException):
            raise item
        seen += 1
        if item[2] is not None:
            batch.append(item)
    return batch, seen, False


@contextlib.contextmanager
def single_torch_thread():
    """Run the block with torch on one thread, restoring its thread count after."""
    # deferred: torch takes seconds to import, and only the steps that compute with it need it
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def create_feature_raster(path: Path, grid: TileGrid, backbone, crs, window_transform, record: dict, p,
                          runtime: str = "torch") -> None:
    """An empty float32 feature GeoTIFF on the output grid (one band per feature, NaN nodata), tagged with the run
    (``runtime``: the model's, see engine.runtimes)."""
    transform = window_transform @ Affine.scale(grid.cell_w, grid.cell_h)
    profile = dict(OUTPUT_FORMATS[p.OUTPUT_FORMAT].options, width=grid.out_width, height=grid.out_height,
                   count=backbone.dim, dtype="float32", crs=crs, transform=transform, nodata=float("nan"))
    with rasterio.open(path, "w", **profile) as dst:
        dst.descriptions = tuple(f"feature {i + 1}" for i in range(backbone.dim))
        dst.update_tags(IAMAP_TOOL="encoder", IAMAP_VERSION=__version__, MODEL=backbone.name,
                        WEIGHTS=backbone.weights, TILE_SIZE=p.SIZE, STRIDE=p.STRIDE, MERGE_METHOD=p.MERGE_METHOD,
                        BANDS=",".join(map(str, record["bands"])), PRECISION=record["precision"],
                        RUNTIME=runtime, INPUT=record["input"]["path"])
