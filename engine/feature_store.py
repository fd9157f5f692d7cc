"""The similarity explorer's features: every pixel of a raster loaded once for many similarity maps.

Memory is bounded by storing every pixel once as a float16 *unit* vector (cosine similarity needs only the
direction): 2 bytes x bands x pixels (3 GiB for 2048 x 2048 x 384; the preview's copy adds a quarter), half the
float32 raster, held in memory when it takes at most half the available memory, else a memory-mapped file of the
work folder paged by the OS, so a raster bigger than RAM still works, only slower. A click is then one float16
matrix-vector product over that array; the references keep their raw values (read from the raster), so the
prototype is the one the batch similarity tool uses.

Loading is one pass over the raster in full-width strips, :data:`READERS` strips at a time, each thread with its own
file handle: the encoder's uncompressed formats are read block by block as they lie in the file
(:class:`engine.feature_reading.RawTiles`), anything else by GDAL straight into pixel-major order (what a
pixel-interleaved feature raster already is: a copy, not a transpose), then the strip's norms give both the unit vectors
and the nodata test (a NaN or infinite band makes the norm so), and the unit vectors go to the store and, every second
row and column, to the preview. GDAL and torch release the GIL, so the threads share the cores.

The persistent cache (:mod:`engine.feature_cache`) keeps the stores of large rasters between sessions, keyed by
the raster's fingerprint: opening an unchanged raster again reads nothing but the stored files, when the first
click needs them.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import rasterio
import torch
from affine import Affine
from rasterio.windows import Window

from .cosine import cosine_similarity
from .feature_cache import PARTIAL, STORE_RECORD, cache_entry, evict, has_room
from .feature_reading import RawTiles, read_pixels
from .memory import available_memory
from .rasters import grid_transform, strip_rows

#: Threads loading the raster (each reads and normalises its own strips, with its own file handle). One: on a
#: 2-core machine, two were slower than one for every format (benchmarks/explorer_benchmark.py); GDAL decodes
#: compressed tiles with its own threads meanwhile.
READERS = 1
#: Pixels normalised at once (1.5 MiB of float32 for 384 bands: they stay in the CPU's cache between the steps).
UNIT_CHUNK = 1024
#: Pixels above which each map is preceded by a preview on every second row and column.
PREVIEW_PIXELS = 2**21
#: Share of the available memory a store may take (else it is a memory-mapped file), and the bytes of each write
#: of the background thread that copies an in-memory store to the cache (each checks whether to stop).
MEMORY_SHARE = 0.5
CACHE_WRITE_BYTES = 64 * 2**20


def populated_array(shape: tuple, dtype) -> np.ndarray:
    """An uninitialised array like ``np.empty``, but on Linux with all its pages mapped in at once (MAP_POPULATE):
    faulting gigabytes in page by page while writing them is slower, and numpy's huge-page advice on large
    arrays can stall in the kernel's memory compaction (seconds, measured, when the page cache fills the RAM)."""
    size = math.prod(shape) * np.dtype(dtype).itemsize
    if not size or not hasattr(mmap, "MAP_POPULATE"):
        return np.empty(shape, dtype)
    memory = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | mmap.MAP_POPULATE)
    return np.frombuffer(memory, dtype).reshape(shape)


def unit_vectors(pixels: np.ndarray, out: np.ndarray, nodata: np.ndarray | None = None) -> np.ndarray:
    """Write the unit vectors of ``pixels`` (n, bands) float32 into ``out`` (n, bands) float16, zero vectors for
    the invalid pixels, and return which are valid (n,): every band finite and none equal to its value in
    ``nodata`` (bands,) (NaN where a band has none), as :func:`engine.rasters.valid_pixels` decides.

    ``pixels`` is scaled in place (it is a read buffer): float32 all along, float16 only at the end (a band value
    over 65504 would overflow float16), chunk by chunk so that each chunk stays in the CPU's cache."""
    values, halves = torch.from_numpy(pixels), torch.from_numpy(out)
    norms = torch.empty(len(pixels))
    valid = np.ones(len(pixels), bool)
    used = np.array([], int) if nodata is None else np.flatnonzero(~np.isnan(nodata))
    for start in range(0, len(pixels), UNIT_CHUNK):
        chunk, norm = values[start:start + UNIT_CHUNK], norms[start:start + UNIT_CHUNK]
        torch.linalg.vector_norm(chunk, dim=1, out=norm)
        if len(used):
            valid[start:start + len(chunk)] = ~(pixels[start:start + len(chunk), used] == nodata[used]).any(axis=1)
        if not bool(torch.isfinite(norm).all()):  # a NaN or infinite band makes the norm so: one test per pixel
            suspect = np.flatnonzero(~torch.isfinite(norm).numpy())
            raw = pixels[start + suspect].astype(np.float64)
            finite = np.isfinite(raw).all(axis=1)  # else: finite bands whose squares overflow float32
            valid[start + suspect[~finite]] = False
            huge = raw[finite]
        else:
            suspect = huge = None
        chunk.mul_((1 / norm.clamp_min(1e-12))[:, None])
        halves[start:start + UNIT_CHUNK].copy_(chunk)
        if huge is not None and len(huge):
            out[start + suspect[finite]] = huge / np.linalg.norm(huge, axis=1, keepdims=True)
    if not valid.all():
        out[~valid] = 0
    return valid


class Grid:
    """Pixels as float16 unit vectors (pixels, bands) row-major (a torch tensor over a memory-mapped file), which
    are valid, and where they are: the raster's own grid or the preview's coarser one."""

    def __init__(self, vectors, valid: np.ndarray, height: int, width: int, transform):
        self.vectors, self.valid, self.height, self.width, self.transform = vectors, valid, height, width, transform

    def similarity(self, references: np.ndarray, aggregation: str) -> np.ndarray:
        """The (height, width) float32 map of cosine similarity to ``references`` (n, bands), NaN on nodata."""
        # one product over all pixels (``max`` bounds its own temporaries): splitting it only adds copies
        result = cosine_similarity(self.vectors, torch.from_numpy(references), aggregation, unit_pixels=True)
        result = result.float().numpy()
        np.clip(result, -1, 1, out=result)  # float16 rounding reaches 1.001
        result[~self.valid] = np.nan
        return result.reshape(self.height, self.width)


class FeatureStore:
    """Every valid pixel of the raster as a float16 unit vector (:class:`Grid`), and its preview grid (every second
    row and column) when the raster is large.

    The store is held in memory when it takes at most :data:`MEMORY_SHARE` of the available memory, else it is a
    memory-mapped file of ``workdir``, paged by the OS (``in_memory`` says which): writing gigabytes to a file runs
    at the disk's speed once the OS stops buffering them, several times slower than the rest of the load.

    With ``cache`` (a folder) a large raster's store is kept there, under a key made of the raster's path,
    :func:`engine.raster_writing.file_fingerprint` and bands, so opening the same unchanged raster again maps the
    stored files instead of reading the raster (``cached`` says so); see :func:`cache_entry` for the bounds. An
    in-memory store is written there by a background thread (:meth:`start_caching`; :meth:`close` stops it).
    """

    def __init__(self, src, bands: list[int], workdir: Path, readers: int = READERS, cache: Path | None = None):

        self.height, self.width, self.bands = src.height, src.width, bands
        self.transform, self.crs = grid_transform(src), src.crs
        self.window = Window(0, 0, src.width, src.height)
        self.cached = self.in_memory = False
        self.caching: threading.Thread | None = None
        self._stop = threading.Event()
        #: set while a map is computed: the background cache writer waits meanwhile (it would slow the click)
        self.computing = threading.Event()
        entry = cache_entry(src, bands, cache) if cache is not None else None
        if entry is not None and (entry / STORE_RECORD).exists():
            try:
                self._open(entry)
                self.cached = True
                os.utime(entry / STORE_RECORD)  # recently used: evicted last
                return
            except (OSError, ValueError, KeyError):  # damaged or from another layout: built again
                shutil.rmtree(entry, ignore_errors=True)
        pixels = self.height * self.width
        self.preview_shape = ((self.height + 1) // 2, (self.width + 1) // 2) if pixels > PREVIEW_PIXELS else None
        size = (pixels + (math.prod(self.preview_shape) if self.preview_shape else 0)) * len(bands) * 2
        available = available_memory()
        self.in_memory = available is not None and size <= MEMORY_SHARE * available
        staging = None
        if entry is not None and has_room(cache, size):
            staging = entry.with_name(f"{entry.name}{PARTIAL}{os.getpid()}")
            staging.mkdir(parents=True, exist_ok=True)
        try:
            self._build(src, readers, None if self.in_memory else staging or workdir)
        except BaseException:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
            raise
        if staging is None:
            return
        if self.in_memory:
            self._pending = (staging, entry)  # written by :meth:`start_caching`'s thread
        else:
            self._publish(staging, entry, False)

    _pending: tuple[Path, Path] | None = None

    def start_caching(self) -> None:
        """Start writing an in-memory store to the cache in a background thread (the server does once it has
        said it is ready); it waits while a map is computed."""
        if self._pending is not None and self.caching is None:
            self.caching = threading.Thread(target=self._publish, args=(*self._pending, True), daemon=True,
                                            name="iamap-explorer-cache")
            self.caching.start()

    def wait_for_cache(self) -> None:
        """Write the cache and wait until it is written (tests, benchmarks)."""
        self.start_caching()
        if self.caching is not None:
            self.caching.join()

    def close(self) -> None:
        """Stop writing the cache (its half-written store is removed); the maps stay readable."""
        self._stop.set()
        if self.caching is not None:
            self.caching.join()
        elif self._pending is not None:
            shutil.rmtree(self._pending[0], ignore_errors=True)
        self._pending = None

    def _build(self, src, readers: int, folder: Path | None) -> None:
        """Read the raster into the store: arrays in memory, or memory-mapped files of ``folder``."""
        bands, height, width, count = self.bands, self.height, self.width, len(self.bands)

        def array(name: str, pixels: int) -> np.ndarray:
            if folder is None:
                return populated_array((pixels, count), np.float16)
            return np.memmap(folder / name, np.float16, "w+", shape=(pixels, count))

        self.valid = np.zeros(height * width, bool)
        vectors = array("features.f16", height * width)
        preview = preview_valid = None
        if self.preview_shape is not None:
            preview = array("preview.f16", math.prod(self.preview_shape))
            preview_valid = np.zeros(len(preview), bool)
        self._arrays = {"features.f16": vectors, "preview.f16": preview}
        nodata = np.array([np.nan if src.nodatavals[b - 1] is None else src.nodatavals[b - 1] for b in bands],
                          np.float32)
        raw = RawTiles.of(src, bands)
        # even, and whole blocks for the raw reads: every strip starts on a preview row and on a block
        step = raw.block[0] if raw is not None else 2
        rows = max(step, strip_rows(self.window, count) // step * step)
        gdal_threads = str(max(1, (os.cpu_count() or 1) // readers))
        failed: list[BaseException] = []

        def load(reader: int) -> None:
            pixels = np.empty((rows, width, count), np.float32)
            # the readers are the parallelism: torch's own threads would only wait for each other (the setting is
            # the calling thread's: OpenMP's)
            torch.set_num_threads(1)
            try:
                # GTIFF_DIRECT_IO: an uncompressed file is read without GDAL's block cache (four times faster);
                # GDAL_NUM_THREADS: compressed or float16 tiles are decoded straight into the strip, by the
                # reader's share of the cores (twice as fast as through the block cache)
                with rasterio.Env(GTIFF_DIRECT_IO=True, GDAL_NUM_THREADS=gdal_threads), \
                        rasterio.open(src.name) if raw is None else open(src.name, "rb") as handle:
                    for row in range(reader * rows, height, rows * readers):
                        if failed:  # another reader failed: its error is raised, no use going on
                            return
                        strip = (read_pixels(handle, bands, Window(0, row, width, min(rows, height - row)), pixels)
                                 if raw is None else raw.read(handle, row, min(rows, height - row), pixels))
                        start, end = row * width, (row + strip.shape[0]) * width
                        self.valid[start:end] = unit_vectors(strip.reshape(-1, count), vectors[start:end], nodata)
                        if preview is not None:  # rows and columns 0, 2, 4... (the strip starts on an even row)
                            first = row // 2 * self.preview_shape[1]
                            coarse = vectors[start:end].reshape(-1, width, count)[::2, ::2]
                            preview[first:first + coarse.shape[0] * coarse.shape[1]] = coarse.reshape(-1, count)
                            preview_valid[first:first + coarse.shape[0] * coarse.shape[1]] = \
                                self.valid[start:end].reshape(-1, width)[::2, ::2].ravel()
            except BaseException as exc:
                failed.append(exc)

        threads = torch.get_num_threads()
        try:
            with ThreadPoolExecutor(readers) as pool:
                for reader in range(readers):
                    pool.submit(load, reader)
            if failed:
                raise failed[0]
        finally:
            torch.set_num_threads(threads)  # the clicks' products use every core again
        self.grid = Grid(torch.from_numpy(vectors), self.valid, height, width, self.transform)
        self.preview = None if preview is None else Grid(torch.from_numpy(preview), preview_valid,
                                                         *self.preview_shape, self.transform * Affine.scale(2))

    def _publish(self, staging: Path, entry: Path, write: bool) -> None:
        """Record the store in ``staging`` (``write``: its arrays first, from memory) and move it to ``entry``,
        then evict the least recently used stores beyond :data:`CACHE_BYTES`. In the background thread, an error
        only loses the cache."""
        if write:
            try:  # Linux: this thread's own priority, lowest (the clicks come first)
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
            except (AttributeError, OSError):
                pass
        try:
            for name, array in self._arrays.items():
                if array is None:
                    continue
                if not write:  # memory-mapped in ``staging`` already
                    array.flush()
                    continue
                data = array.reshape(-1).view(np.uint8)
                with open(staging / name, "wb") as f:
                    for start in range(0, len(data), CACHE_WRITE_BYTES):
                        while self.computing.is_set() and not self._stop.is_set():
                            time.sleep(0.02)
                        if self._stop.is_set():
                            raise InterruptedError("the explorer closed")
                        f.write(data[start:start + CACHE_WRITE_BYTES])
            np.save(staging / "valid.npy", self.valid)
            record = {"height": self.height, "width": self.width, "bands": len(self.bands), "preview": None}
            if self.preview is not None:
                np.save(staging / "preview_valid.npy", self.preview.valid)
                record["preview"] = [self.preview.height, self.preview.width]
            (staging / STORE_RECORD).write_text(json.dumps(record))
            os.replace(staging, entry)
        except (OSError, InterruptedError):
            # another explorer published the same store first, the disk is full, Windows keeps mapped folders, or
            # the explorer closed: no cache this time
            shutil.rmtree(staging, ignore_errors=True)
            return
        evict(entry.parent, keep=entry)

    def _open(self, entry: Path) -> None:
        """Map the files of the cached store ``entry`` (copy-on-write: never written, so they share the page cache
        and the files stay as they are)."""
        record = json.loads((entry / STORE_RECORD).read_text())
        if (record["height"], record["width"], record["bands"]) != (self.height, self.width, len(self.bands)):
            raise ValueError(f"{entry} holds another raster's store")
        self.valid = np.load(entry / "valid.npy")
        vectors = np.memmap(entry / "features.f16", np.float16, "c", shape=(self.valid.size, len(self.bands)))
        self.grid = Grid(torch.from_numpy(vectors), self.valid, self.height, self.width, self.transform)
        self.preview = None
        if record["preview"]:
            valid = np.load(entry / "preview_valid.npy")
            preview = np.memmap(entry / "preview.f16", np.float16, "c", shape=(valid.size, len(self.bands)))
            self.preview = Grid(torch.from_numpy(preview), valid, *record["preview"], self.transform * Affine.scale(2))


