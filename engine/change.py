"""The change tool: per-pixel change between dates of one place, 1 - cosine similarity of their pixel vectors.

1. The dates are feature rasters of one backbone (their band counts and the backbones their encoder records
   name must agree), or images that :func:`engine.encoder.run_encoder` encodes with one backbone first (ENCODE).
2. Every later date is read on the first date's grid through a warped view (reprojected and resampled when the
   CRS, pixel size or extent differ); the output covers the overlap of all the dates only.
3. Strip by strip: the change to each later date (one band each), the date of largest change, and the
   histogram of the largest change, from which Otsu's method picks the threshold when none is given.
4. The mask (the largest change reaching the threshold), the changed area and the polygons of the changed
   regions (:mod:`engine.polygons`).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
import rasterio
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds

from . import __version__
from .blockwise import RasterTarget, create_partial
from .contract.change import ENCODING_PARAMETERS
from .destinations import partial_path, sidecar_path
from .errors import ParameterError
from .parameters import parameter_class
from .polygons import check_polygons_path, tool_polygons
from .raster_writing import RowWriter, check_output, finalize
from .rasters import extent_window, open_raster, read_padded, strip_rows, window_transform

#: Bins of the histogram of the largest change over [0, 2] that Otsu's threshold is chosen from.
HISTOGRAM_BINS = 4096
#: Nodata of the uint8 mask and date rasters.
BYTE_NODATA = 255
#: The value of the changed pixels in the mask and of their polygons (unchanged: 0).
CHANGED = 1
#: Progress shares: encoding the dates (ENCODE), the change pass, the mask pass, the polygons.
ENCODING, CHANGE_END, MASK_END = 50, 80, 90


class ChangeParams(parameter_class("change")):
    """The change tool's parameters (see ``engine.contract.CHANGE``)."""

    def check(self) -> None:
        if not self.LATER:
            raise ParameterError("LATER", "no later date given: give one raster or more, of the same place as INPUT.")
        if len(self.LATER) >= BYTE_NODATA:
            raise ParameterError("LATER", f"{len(self.LATER)} later dates: at most {BYTE_NODATA - 1}.")
        check_polygons_path(self.OUTPUT_POLYGONS)


def run_change(params: dict, reporter) -> dict:
    """The change tool. Returns the outputs sent in the worker's ``result`` event."""
    p = ChangeParams.from_dict(params)
    output = check_output(p.OUTPUT)
    mask = check_output(p.OUTPUT_MASK, "OUTPUT_MASK") if p.OUTPUT_MASK else None
    date = check_output(p.OUTPUT_DATE, "OUTPUT_DATE") if p.OUTPUT_DATE else None
    dates = [p.INPUT, *p.LATER]
    if p.ENCODE:
        dates = encoded_dates(p, dates, output, reporter.stage(0, ENCODING))
    else:
        check_same_features(dates)
    start = ENCODING if p.ENCODE else 0
    names = [Path(path).stem for path in p.LATER]
    with aligned_dates(dates, reporter) as (first, later, window):
        histogram, compared = change_pass(first, later, window, output, date, names,
                                          reporter.stage(start, CHANGE_END))
        transform = window_transform(first, window)
    threshold = p.THRESHOLD if p.THRESHOLD is not None else otsu_threshold(histogram, reporter)
    changed = mask_pass(output, mask, threshold, reporter.stage(CHANGE_END, MASK_END))
    pixel_area = abs(transform.a * transform.e - transform.b * transform.d)
    record = {"tool": "change", "iamap_version": __version__, "parameters": params, "threshold": threshold}
    outputs = {"OUTPUT": str(output), "THRESHOLD_USED": threshold, "CHANGED_PIXELS": changed,
               "CHANGED_AREA": changed * pixel_area, "CHANGED_FRACTION": changed / max(compared, 1), "POLYGONS": 0,
               "CHANGED_NAME": changed_name(names)}
    reporter.text(f"{changed} of {compared} compared pixels changed ({100 * outputs['CHANGED_FRACTION']:.2f} %, "
                  f"{outputs['CHANGED_AREA']:.6g} CRS units\u00b2) at threshold {threshold:.4f}.")
    finalize(partial_path(output), output, record)
    for extra, name in ((mask, "OUTPUT_MASK"), (date, "OUTPUT_DATE")):
        if extra is not None:
            finalize(partial_path(extra), extra, record)
            outputs[name] = str(extra)
    if p.OUTPUT_POLYGONS:
        polygons = tool_polygons(p, params, output, changed_classes(threshold), {CHANGED: changed_name(names)},
                                 reporter.stage(MASK_END, 100), tuple(range(1, len(names) + 1)))
        outputs.update(OUTPUT_POLYGONS=polygons["OUTPUT_POLYGONS"], POLYGONS=polygons["POLYGONS"])
    return outputs


def encoded_dates(p: ChangeParams, dates: list[str], output: Path, reporter) -> list[str]:
    """Encode every date with one backbone by :func:`engine.encoder.run_encoder`; the feature rasters go to
    ``<OUTPUT name>_features/`` and a later run with the same parameters reuses them (the encoder's RESUME)."""
    from .encoder import run_encoder  # deferred: torch and timm load only when something is encoded

    folder = output.with_name(f"{output.stem}_features")
    folder.mkdir(exist_ok=True)
    encoded = []
    for number, path in enumerate(dates):
        target = folder / f"date{number}_{Path(path).stem}.tif"
        reporter.text(f"Encoding date {number} ({Path(path).name}) into {target}...")
        run_encoder({**{name: getattr(p, name) for name in ENCODING_PARAMETERS}, "INPUT": path,
                     "OUTPUT": str(target), "RESUME": True},
                    reporter.stage(100 * number / len(dates), 100 * (number + 1) / len(dates)))
        encoded.append(str(target))
    return encoded


def check_same_features(dates: list[str]) -> None:
    """Refuse dates that are not features of one backbone: another band count, or another backbone recorded in
    the encoder's sidecar (``<name>.iamap.json``)."""
    described = []
    for path in dates:
        with open_raster(path, parameter="INPUT" if path == dates[0] else "LATER") as src:
            count = src.count
        record = sidecar_path(Path(path))
        backbone = None
        if record.is_file():
            with contextlib.suppress(ValueError, OSError):
                recorded = json.loads(record.read_text(encoding="utf-8"))
                if recorded.get("tool") == "encoder":
                    backbone = (recorded.get("model"), recorded.get("weights"))
        described.append((count, backbone))
    first_count, first_backbone = described[0]
    for path, (count, backbone) in zip(dates[1:], described[1:]):
        if count != first_count:
            raise ParameterError("LATER", f"{Path(path).name} has {count} band(s) and INPUT {Path(dates[0]).name} "
                                          f"{first_count}: the dates must be features of the same backbone. Encode "
                                          "them with one backbone, or turn ENCODE on and give the images.")
        if backbone and first_backbone and backbone != first_backbone:
            raise ParameterError("LATER", f"{Path(path).name} was encoded by {backbone[0]} ({backbone[1]}) and INPUT "
                                          f"by {first_backbone[0]} ({first_backbone[1]}): features of different "
                                          "backbones cannot be compared. Encode both with one backbone, or turn "
                                          "ENCODE on and give the images.")


@contextlib.contextmanager
def aligned_dates(dates: list[str], reporter):
    """(first date, later dates warped onto its grid, the window of the first date that every date covers)."""
    with contextlib.ExitStack() as stack:
        first = stack.enter_context(open_raster(dates[0]))
        bounds = list(first.bounds)
        later = []
        for path in dates[1:]:
            src = stack.enter_context(open_raster(path, parameter="LATER"))
            if src.crs is not None and first.crs is not None and src.crs != first.crs:
                reporter.text(f"{Path(path).name} is in {src.crs}: reprojected onto the first date's grid "
                              f"({first.crs}, bilinear).")
                other = transform_bounds(src.crs, first.crs, *src.bounds)
            else:
                other = src.bounds
                if src.transform != first.transform or src.shape != first.shape:
                    reporter.text(f"{Path(path).name} is on another grid: resampled onto the first date's (bilinear).")
            bounds = [max(bounds[0], other[0]), max(bounds[1], other[1]), min(bounds[2], other[2]),
                      min(bounds[3], other[3])]
            nodata = src.nodata if src.nodata is not None else (np.nan if src.dtypes[0].startswith("float") else None)
            later.append(stack.enter_context(WarpedVRT(
                src, crs=first.crs or src.crs, transform=first.transform, width=first.width, height=first.height,
                resampling=rasterio.enums.Resampling.bilinear, src_nodata=src.nodata, nodata=nodata)))
        if bounds[0] >= bounds[2] or bounds[1] >= bounds[3]:
            raise ParameterError("LATER", "the later date(s) do not overlap INPUT: give rasters of the same place.")
        window = extent_window(first, bounds, "LATER")
        if (window.width, window.height) != (first.width, first.height):
            reporter.text(f"The dates overlap on {window.width}x{window.height} of the first date's "
                          f"{first.width}x{first.height} pixels: only the overlap is compared.")
        yield first, later, window


def pixel_change(first: np.ndarray, other: np.ndarray) -> np.ndarray:
    """1 - cosine similarity of the rows of ``first`` and ``other`` (n, bands), float32."""
    dot = np.einsum("ij,ij->i", first, other)
    norms = np.linalg.norm(first, axis=1) * np.linalg.norm(other, axis=1)
    # rounding puts identical vectors a hair below 0: the change is clipped to its range
    return np.clip(1 - dot / np.maximum(norms, 1e-12), 0, 2).astype(np.float32)


def change_pass(first, later: list, window, output: Path, date: Path | None, names: list[str], reporter):
    """Write the change raster (and OUTPUT_DATE); return the histogram of the largest change and the number of
    pixels compared to at least one later date."""
    bands = list(range(1, first.count + 1))
    transform = window_transform(first, window)
    tags = {"IAMAP_TOOL": "change", "IAMAP_VERSION": __version__}
    targets = [RasterTarget(output, len(later), "float32", float("nan"),
                            tuple(f"change to {name}" for name in names))]
    if date is not None:
        targets.append(RasterTarget(date, 1, "uint8", BYTE_NODATA, ("later date of largest change",), "OUTPUT_DATE"))
    writers = [RowWriter(create_partial(t, first.crs, transform, window.width, window.height, tags))
               for t in targets]
    histogram, compared = np.zeros(HISTOGRAM_BINS, np.int64), 0
    rows = strip_rows(window, first.count * (len(later) + 1))
    for row in range(0, window.height, rows):
        height = min(rows, window.height - row)
        data, valid = read_padded(first, bands, window, row, height, 0, window.width)
        base, base_ok = data.reshape(len(bands), -1).T, valid.all(axis=0).ravel()
        change = np.full((len(later), base.shape[0]), np.nan, np.float32)
        for index, vrt in enumerate(later):
            data, valid = read_padded(vrt, bands, window, row, height, 0, window.width)
            ok = base_ok & valid.all(axis=0).ravel()
            change[index, ok] = pixel_change(base[ok], data.reshape(len(bands), -1).T[ok])
        seen = np.isfinite(change).any(axis=0)
        largest = np.where(seen, np.nanmax(np.where(np.isfinite(change), change, -np.inf), axis=0), np.nan)
        histogram += np.histogram(np.clip(largest[seen], 0, 2), HISTOGRAM_BINS, (0, 2))[0]
        compared += int(seen.sum())
        writers[0].add(row, change.reshape(len(later), height, window.width))
        if date is not None:
            which = np.where(seen, np.argmax(np.where(np.isfinite(change), change, -np.inf), axis=0) + 1,
                             BYTE_NODATA).astype(np.uint8)
            writers[1].add(row, which.reshape(1, height, window.width))
        reporter.progress(100 * (row + height) / window.height)
    for writer in writers:
        writer.close()
    return histogram, compared


def otsu_threshold(histogram: np.ndarray, reporter) -> float:
    """The threshold that best separates the histogram of the change in two classes (Otsu's method)."""
    centres = (np.arange(len(histogram)) + 0.5) * 2 / len(histogram)
    weights = np.cumsum(histogram).astype(np.float64)
    total = weights[-1]
    if total == 0:
        raise ParameterError("LATER", "no pixel is valid in both dates: nothing to compare.")
    sums = np.cumsum(histogram * centres)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_low = sums / weights
        mean_high = (sums[-1] - sums) / (total - weights)
        between = weights * (total - weights) * (mean_low - mean_high) ** 2
    between = np.where(np.isfinite(between), between, -1)
    # the empty bins between two modes all score the best: the middle of them, not the edge of the lower mode
    best = int(np.median(np.flatnonzero(between >= between.max() * (1 - 1e-9))))
    threshold = float(2 * (best + 1) / len(histogram))
    reporter.text(f"Automatic threshold (Otsu's method on the histogram of the largest change of {int(total)} "
                  f"pixels): {threshold:.4f}.")
    return threshold


def changed_name(names: list[str]) -> str:
    """The class name of the changed pixels, after the later dates (``names``)."""
    return f"change to {names[0]}" if len(names) == 1 else f"change to any of {', '.join(names)}"


def changed_classes(threshold: float):
    """The polygon classifier of a change raster: :data:`CHANGED` where the largest change over the later dates
    reaches ``threshold``."""
    def classify(values, _valid):
        largest = np.where(np.isfinite(values), values, -np.inf).max(axis=0)
        return np.full(largest.shape, CHANGED, np.int32), largest >= threshold
    return classify


def mask_pass(output: Path, mask: Path | None, threshold: float, reporter) -> int:
    """Count the changed pixels of the (partial) change raster and write OUTPUT_MASK; returns the count."""
    partial = partial_path(output)
    classify, changed = changed_classes(threshold), 0
    with rasterio.open(partial) as src:
        writer = None
        if mask is not None:
            target = RasterTarget(mask, 1, "uint8", BYTE_NODATA, ("changed",), "OUTPUT_MASK")
            writer = RowWriter(create_partial(target, src.crs, src.transform, src.width, src.height,
                                              {"IAMAP_TOOL": "change", "THRESHOLD": threshold}))
        rows = strip_rows(extent_window(src, None), src.count)
        for row in range(0, src.height, rows):
            height = min(rows, src.height - row)
            values = src.read(window=rasterio.windows.Window(0, row, src.width, height))
            classes, keep = classify(values, None)
            changed += int(keep.sum())
            if writer is not None:
                coded = np.where(keep, classes, 0).astype(np.uint8)
                coded[~np.isfinite(values).any(axis=0)] = BYTE_NODATA
                writer.add(row, coded[None])
            reporter.progress(100 * (row + height) / src.height)
        if writer is not None:
            writer.close()
    return changed
