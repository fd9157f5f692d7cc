"""The similarity explorer's long-lived worker: ``python -m engine.similarity_server RASTER [--bands 1,2,...]
[--workdir DIR] [--cache DIR | --no-cache]``.

It loads the feature raster once, then answers JSON-lines requests on stdin with JSON-lines replies on stdout
(one reply per request, in order; a ``ready`` reply, or an error, once the features are loaded: only coarse
previews come before it). Each similarity map is a GeoTIFF in the work folder: files cross the process
boundary, never pickles.

Requests (coordinates and WKT in the raster's CRS; ``id`` is echoed back)::

    {"op": "click", "x": .., "y": .., "add": false}   reference = the pixel under (x, y); add: one more reference
    {"op": "region", "wkt": "POLYGON ((..))", "add": false}   every valid pixel in the polygon (box) is a reference
    {"op": "aggregation", "aggregation": "max"}       mean (one prototype) or max (nearest reference); recomputes
    {"op": "clear"}                                   forget the references
    {"op": "mask", "threshold": 0.8, "output": "mask.gpkg"}   polygons of the last map >= threshold
    {"op": "quit"}

Replies: ``{"id", "ok": true, ...}`` or ``{"id", "ok": false, "reason": "outside"|"nodata"|"parameter"|"error",
"message"}``. A map reply has ``map`` (the GeoTIFF), ``references``, ``minimum``, ``maximum`` and ``seconds``; the
full map's reply also ``reference_points``, the [x, y] centres of the reference pixels in the raster's CRS.
On a raster of more than :data:`engine.feature_store.PREVIEW_PIXELS` pixels a map request is answered twice
under its id: first a ``"preview": true`` map on every second row and column (a quarter of the work: the answer
a user sees within half a second), then the full map.

Requests are read from the start, while the store loads in a background thread (torch's import alone takes over a
second): a map asked meanwhile is answered first by a ``"preview": true`` map on a coarse grid computed from the
raster itself (:mod:`engine.store_loading`), then, once the store is loaded, by the full map. The ``ready``
reply comes when the store is loaded, so previews may come before it.

Memory, speed and the persistent cache of features (``--cache``, default
:func:`engine.feature_cache.default_cache_dir`; the ready reply's ``cached`` says whether it served the raster):
see :mod:`engine.feature_store`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

import numpy as np
import rasterio
from rasterio.features import geometry_mask
from rasterio.windows import Window

from .errors import IamapError, ParameterError
from .events import claim_stdout
from .feature_cache import default_cache_dir
from .rasters import check_bands, grid_transform, open_raster
from .similarity_mask import write_mask
from .store_loading import StoreFailed, StoreLoading, coarse_similarity, reads_coarsely
from .vectors import pixel_indices, pixels_at

AGGREGATIONS = ("mean", "max")
#: Pixels of a region taken as references, drawn at random beyond this: bounds the time of ``max``.
MAX_REGION_REFERENCES = 5000
#: Similarity maps kept in the work folder (QGIS may still be drawing the previous one).
KEPT_MAPS = 3


class Outside(IamapError):
    """The request points outside the raster or only at nodata pixels; ``reason`` says which."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class Session:
    """The references chosen so far and the last map; one method per request ``op`` (see the module docstring)."""

    def __init__(self, src, bands: list[int], workdir: Path, cache: Path | None = None, loaded=None):
        self.src, self.workdir, self.bands = src, workdir, bands
        self.window, self.transform = Window(0, 0, src.width, src.height), grid_transform(src)
        self.coarse = reads_coarsely(src)
        self.loading = StoreLoading(src.name, bands, workdir, cache, loaded or (lambda store, error: None))
        self.references = np.zeros((0, len(bands)), np.float32)
        self.reference_pixels = np.zeros((0, 2), np.int64)  # (row, col): recorded with the exported mask
        self.aggregation = "mean"
        self.last_map: np.ndarray | None = None
        self.send_preview = None  # set by :func:`answer`: sends a preview reply to the request being answered
        self.maps: list[Path] = []
        self.count = 0

    @property
    def store(self):
        return self.loading.store()

    def click(self, request: dict) -> dict:
        x, y = float(request["x"]), float(request["y"])
        rows, cols = pixel_indices(self.src, self.window, np.array([x]), np.array([y]))
        values, valid, inside = pixels_at(self.src, self.bands, self.window, rows, cols)
        if not inside[0]:
            raise Outside("outside", f"({x:.6g}, {y:.6g}) is outside the raster.")
        if not valid[0]:
            raise Outside("nodata", f"the pixel at ({x:.6g}, {y:.6g}) is nodata: click on a valid pixel.")
        return self._use(values, np.stack([rows, cols], 1), bool(request.get("add")))

    def region(self, request: dict) -> dict:
        # deferred: geopandas / shapely / pandas load only when vector data is read or written
        from shapely import wkt
        from shapely.geometry import mapping

        try:
            shape = wkt.loads(request["wkt"])
        except Exception as exc:
            raise ParameterError("wkt", f"not a WKT geometry: {exc}") from None
        picked = []
        for all_touched in (False, True):  # pixels whose centre is inside; those touched when no centre is
            inside = ~geometry_mask([mapping(shape)], (self.store.height, self.store.width), self.store.transform,
                                    all_touched=all_touched)
            picked = np.flatnonzero(inside.ravel())
            if len(picked):
                break
        if not len(picked):
            raise Outside("outside", "the region does not cover any pixel of the raster.")
        picked = picked[self.store.valid[picked]]
        if not len(picked):
            raise Outside("nodata", "the region covers only nodata pixels.")
        if len(picked) > MAX_REGION_REFERENCES:
            picked = np.sort(np.random.default_rng(0).choice(picked, MAX_REGION_REFERENCES, replace=False))
        rows, cols = np.divmod(picked, self.store.width)
        values, valid, _ = pixels_at(self.src, self.bands, self.window, rows, cols)
        return self._use(values[valid], np.stack([rows, cols], 1)[valid], bool(request.get("add")))

    def aggregation_(self, request: dict) -> dict:
        aggregation = request.get("aggregation")
        if aggregation not in AGGREGATIONS:
            raise ParameterError("AGGREGATION", f"{aggregation!r}: choose one of {', '.join(AGGREGATIONS)}.")
        self.aggregation = aggregation
        return self._answer() if len(self.references) else {"references": 0}

    def clear(self, request: dict) -> dict:
        self.references = self.references[:0]
        self.reference_pixels = self.reference_pixels[:0]
        self.last_map = None
        return {"references": 0}

    def mask(self, request: dict) -> dict:
        if self.last_map is None:
            raise ParameterError("mask", "no similarity map yet: click on the map first.")
        threshold = float(request["threshold"])
        polygons = write_mask(self.last_map, threshold, self.store.transform, self.store.crs, request["output"],
                              {"threshold": threshold, "aggregation": self.aggregation,
                               "references": len(self.references), "raster": str(self.src.name)},
                              self.reference_points())
        return {"output": str(request["output"]), "polygons": polygons}

    def reference_points(self) -> np.ndarray:
        """(x, y) of the centre of every reference pixel, in the raster's CRS."""
        xs, ys = (self.store.transform * (self.reference_pixels[:, 1] + 0.5, self.reference_pixels[:, 0] + 0.5))
        return np.stack([np.asarray(xs, float), np.asarray(ys, float)], 1).reshape(-1, 2)

    def _use(self, values: np.ndarray, pixels: np.ndarray, add: bool) -> dict:
        self.references = np.concatenate([self.references, values]) if add else values
        self.reference_pixels = np.concatenate([self.reference_pixels, pixels]) if add else pixels
        return self._answer()

    def _answer(self) -> dict:
        if self.send_preview is not None and self.coarse and not self.loading.done:  # a coarse map meanwhile
            start = time.perf_counter()
            values, transform = coarse_similarity(self.src, self.bands, self.references, self.aggregation)
            self.send_preview({**self._reply(values, transform, start), "preview": True})
        elif self.send_preview is not None and self.store.preview is not None:
            self.send_preview({**self._map(self.store.preview)[1], "preview": True})
        self.last_map, reply = self._map(self.store.grid)
        # where the references are, for the explorer to mark them on the map
        return {**reply, "reference_points": self.reference_points().round(6).tolist()}

    def _map(self, grid) -> tuple[np.ndarray, dict]:
        """The map of ``grid`` (a :class:`engine.feature_store.Grid` of the store) and its reply."""
        start = time.perf_counter()
        store = self.store
        store.computing.set()
        try:
            values = grid.similarity(self.references.astype(np.float32), self.aggregation)
        finally:
            store.computing.clear()
        return values, self._reply(values, grid.transform, start)

    def _reply(self, values: np.ndarray, transform, start: float) -> dict:
        path = self._write(values, transform)
        finite = values[np.isfinite(values)]
        if not finite.size:  # a coarse map may fall on nodata only
            finite = np.array([-1.0, 1.0])
        return {"map": str(path), "references": len(self.references), "aggregation": self.aggregation,
                "minimum": float(finite.min()), "maximum": float(finite.max()),
                "seconds": round(time.perf_counter() - start, 4)}

    def _write(self, data: np.ndarray, transform) -> Path:
        self.count += 1
        path = self.workdir / f"similarity_{self.count}.tif"
        with rasterio.open(path, "w", driver="GTiff", width=data.shape[1], height=data.shape[0], count=1,
                           dtype="float32", crs=self.src.crs, transform=transform, nodata=float("nan")) as dst:
            dst.write(data, 1)
            dst.set_band_description(1, f"cosine similarity ({self.aggregation})")
        self.maps.append(path)
        for old in self.maps[:-KEPT_MAPS]:
            for part in (old, old.with_name(old.name + ".aux.xml")):
                try:
                    part.unlink(missing_ok=True)
                except OSError:  # still open in QGIS (Windows): removed with the work folder
                    pass
        self.maps = self.maps[-KEPT_MAPS:]
        return path


#: request ``op`` -> Session method (``aggregation_``: the attribute ``aggregation`` is the current value).
OPERATIONS = {"click": "click", "region": "region", "aggregation": "aggregation_", "clear": "clear",
              "mask": "mask"}


def answer(session: Session, request: dict, send=None) -> dict:
    """The reply to one request (never raises for a bad request: the reply says what is wrong); ``send`` gets the
    preview replies that come before it."""
    reply = {"id": request.get("id"), "op": request.get("op")}
    session.send_preview = (lambda preview: send({**reply, "ok": True, **preview})) if send else None
    try:
        if request.get("op") not in OPERATIONS:
            raise ParameterError("op", f"{request.get('op')!r}: one of {', '.join(OPERATIONS)} or quit.")
        return {**reply, "ok": True, **getattr(session, OPERATIONS[request["op"]])(request)}
    except StoreFailed:
        raise
    except Outside as exc:
        return {**reply, "ok": False, "reason": exc.reason, "message": str(exc)}
    except (IamapError, KeyError, ValueError, TypeError) as exc:
        message = str(exc) if isinstance(exc, IamapError) else f"bad request: {type(exc).__name__}: {exc}"
        return {**reply, "ok": False, "reason": "parameter", "message": message}
    except Exception as exc:  # a bug: the session goes on, the traceback goes to stderr (QGIS's log)
        traceback.print_exc()
        return {**reply, "ok": False, "reason": "error", "message": f"Internal error: {type(exc).__name__}: {exc}"}


def serve(raster: str, bands, workdir: Path, requests, replies, cache: Path | None = None) -> None:
    """Load ``raster`` (its store kept in or taken from ``cache``, when given), then answer ``requests`` (an
    iterable of JSON lines) on ``replies`` until quit or EOF."""
    lock = threading.Lock()  # the loading thread sends the ready reply

    def send(reply: dict) -> None:
        with lock:
            replies.write(json.dumps(reply) + "\n")
            replies.flush()

    start = time.perf_counter()
    try:
        with open_raster(raster) as src:
            def loaded(store, error) -> None:
                if store is None:
                    message = str(error) if isinstance(error, IamapError) else \
                        f"Internal error: {type(error).__name__}: {error}"
                    send({"id": None, "op": "ready", "ok": False, "reason": "parameter", "message": message})
                    return
                send({"id": None, "op": "ready", "ok": True, "width": src.width, "height": src.height,
                      "bands": len(store.bands), "crs": src.crs.to_wkt() if src.crs else "",
                      "cached": store.cached, "seconds": round(time.perf_counter() - start, 3)})
                store.start_caching()

            session = Session(src, check_bands(src, bands), workdir, cache, loaded)
            try:
                for line in requests:
                    if not line.strip():
                        continue
                    try:
                        request = json.loads(line)
                    except ValueError as exc:
                        send({"id": None, "ok": False, "reason": "parameter", "message": f"not JSON: {exc}"})
                        continue
                    if request.get("op") == "quit":
                        return
                    try:
                        send(answer(session, request, send))
                    except StoreFailed:
                        return
            finally:
                session.loading.close()
    except IamapError as exc:
        send({"id": None, "op": "ready", "ok": False, "reason": "parameter", "message": str(exc)})


def main(argv: list[str] | None = None) -> int:
    """Serve the explorer's requests for one raster, JSON lines on stdin and stdout, until stdin closes."""
    parser = argparse.ArgumentParser(prog="python -m engine.similarity_server")
    parser.add_argument("raster")
    parser.add_argument("--bands", default="", help="comma-separated 1-based band numbers (default: all)")
    parser.add_argument("--workdir", default="", help="folder for the maps (default: a new temporary folder)")
    parser.add_argument("--cache", default="", help="folder of the persistent feature stores (default: "
                                                    f"{default_cache_dir()})")
    parser.add_argument("--no-cache", action="store_true", help="neither use nor fill the persistent cache")
    args = parser.parse_args(argv)
    cache = None if args.no_cache else Path(args.cache) if args.cache else default_cache_dir()
    os.environ.setdefault("GDAL_CACHEMAX", "256")
    replies = claim_stdout()
    bands = [int(b) for b in args.bands.split(",") if b.strip()] or None
    if args.workdir:
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
        serve(args.raster, bands, Path(args.workdir), sys.stdin, replies, cache)
    else:
        with tempfile.TemporaryDirectory(prefix="iamap-explorer-") as workdir:
            serve(args.raster, bands, Path(workdir), sys.stdin, replies, cache)
    return 0


if __name__ == "__main__":
    sys.exit(main())
