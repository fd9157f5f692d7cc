"""Class, cluster, mask and thresholded rasters as polygons: one polygon per 4-connected region of one class, with
its class value and name, area, source raster and the tool and parameters that made it.

Streamed strip by strip (memory is one strip and the polygons still open at its lower edge, never the raster):
each strip is polygonised in *pixel* coordinates, where every vertex is a whole number, so the pieces of one
region on both sides of a strip edge share their edge exactly; the pieces touching the edge are dissolved with
the open pieces above them that share a segment of it (:class:`SeamlessPolygons`). A region spanning many strips
comes out as ONE polygon whose area is exactly its pixel count times the pixel area. Only then are the polygons
moved to the raster's coordinates, filtered by area and (optionally) simplified.

The similarity explorer's exported mask (:mod:`engine.similarity_mask`) goes through the same code.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.features import shapes
from rasterio.windows import Window

from .destinations import partial_path
from .errors import ParameterError
from .rasters import grid_transform, strip_rows, valid_pixels

#: The formats a polygon layer is written in, by file extension (single-file formats: the layer is written under
#: a partial name and renamed once complete).
POLYGON_FORMATS = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON", ".fgb": "FlatGeobuf"}
#: Polygons written to the file at once.
WRITE_BATCH = 1000

#: Bytes of pixel values per strip: the class strip (int32), its mask and the pieces made of it add to that.
POLYGON_STRIP_BYTES = 16 * 2**20

#: (values (bands, rows, cols), valid (rows, cols)) -> (class of each pixel (rows, cols) int32, pixels to keep)
Classifier = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def check_polygons_path(path: str, parameter: str = "OUTPUT_POLYGONS") -> None:
    """Refuse, before any work, a polygon layer whose extension names a format IAMAP does not write."""
    if path and Path(path).suffix.lower() not in POLYGON_FORMATS:
        raise ParameterError(parameter, f"{Path(path).name}: give a file name ending in {', '.join(POLYGON_FORMATS)} "
                                        "(GeoPackage by default; the extension chooses the format).")


def every_value(skip=()) -> Classifier:
    """Each value of band 1 is its own class (class and cluster rasters); ``skip`` values get no polygon."""
    def classify(values, valid):
        classes = values[0].astype(np.int32, copy=False)
        return classes, valid & ~np.isin(classes, list(skip)) if skip else valid
    return classify


def at_least(threshold: float) -> Classifier:
    """Class 1 where band 1 reaches ``threshold`` (a thresholded similarity or change map); nothing elsewhere."""
    def classify(values, valid):
        keep = valid & (values[0] >= threshold)
        return np.ones(keep.shape, np.int32), keep
    return classify


@dataclass(frozen=True)
class PolygonOptions:
    """What shapes the polygons besides the raster: MIN_AREA and SIMPLIFY (in the layer's CRS units), the
    attributes every polygon carries, and the class names."""

    source: str
    tool: str
    parameters: dict
    names: dict[int, str] = field(default_factory=dict)
    min_area: float = 0.0
    simplify: float = 0.0


class SeamlessPolygons:
    """Polygonises class strips given top to bottom, in pixel coordinates (x = column, y = row), and hands out
    each region's polygon once no later strip can extend it.

    :meth:`add` returns the (class, polygon) pairs completed by that strip; :meth:`finish` the rest.
    """

    def __init__(self):
        self.row = 0
        self.open: dict[int, list] = {}  #: class -> pieces touching the lower edge of the last strip

    def add(self, classes: np.ndarray, keep: np.ndarray) -> list[tuple[int, object]]:
        from shapely.geometry import shape  # deferred: shapely loads only when polygons are made

        top, bottom = self.row, self.row + classes.shape[0]
        self.row = bottom
        done, reaching_bottom, reaching_top = [], defaultdict(list), defaultdict(list)
        if keep.any():
            pieces = shapes(classes.astype(np.int32, copy=False), mask=keep, connectivity=4,
                            transform=Affine.translation(0, top))
            for geometry, value in pieces:
                polygon, value = shape(geometry), int(value)
                _, low, _, high = polygon.bounds
                if low == top and value in self.open:
                    reaching_top[value].append(polygon)
                elif high == bottom:
                    reaching_bottom[value].append(polygon)
                else:
                    done.append((value, polygon))
        for value, above in self.open.items():
            below = reaching_top.pop(value, [])
            for polygon in _dissolve_across(above, below, top):
                if polygon.bounds[3] == bottom:
                    reaching_bottom[value].append(polygon)
                else:
                    done.append((value, polygon))
        self.open = dict(reaching_bottom)
        return done

    def finish(self) -> list[tuple[int, object]]:
        done = [(value, polygon) for value, pieces in self.open.items() for polygon in pieces]
        self.open = {}
        return done


def _dissolve_across(above: list, below: list, seam: float) -> list:
    """``above`` and ``below`` (pieces of one class on both sides of the row line ``seam``) with every group
    connected through a shared segment of that line (4-connectivity: a shared corner does not connect) dissolved
    into one polygon. Only these edge pieces are ever unioned."""
    from shapely import STRtree, union_all
    from shapely.geometry import LineString

    if not below:
        return above
    line = LineString([(-1, seam), (np.iinfo(np.int32).max, seam)])
    edges_above = [polygon.boundary.intersection(line) for polygon in above]
    edges_below = [polygon.boundary.intersection(line) for polygon in below]
    parent = list(range(len(above) + len(below)))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    tree = STRtree(edges_above)
    for j, edge in enumerate(edges_below):
        for i in tree.query(edge, predicate="intersects"):
            if edges_above[i].intersection(edge).length > 0:
                parent[root(int(i))] = root(len(above) + j)
    groups = defaultdict(list)
    for i, polygon in enumerate(above + below):
        groups[root(i)].append(polygon)
    return [pieces[0] if len(pieces) == 1 else union_all(pieces) for pieces in groups.values()]


def array_polygons(classes: np.ndarray, keep: np.ndarray, transform) -> list[tuple[int, object]]:
    """(class, polygon in the coordinates of ``transform``) of an in-memory class array (the explorer's mask)."""
    builder = SeamlessPolygons()
    pieces = builder.add(classes, keep) + builder.finish()
    return [(value, _to_map(polygon, transform)) for value, polygon in pieces]


def _to_map(polygon, transform: Affine):
    from shapely.affinity import affine_transform

    return affine_transform(polygon, [transform.a, transform.b, transform.d, transform.e, transform.c, transform.f])


def area_unit(crs) -> str:
    """The unit of the ``area`` field: the square of the CRS's linear unit."""
    if crs is None:
        return "pixel\u00b2"
    if crs.is_geographic:
        return "degree\u00b2"
    unit = (crs.linear_units or "").lower()
    return "m\u00b2" if unit in ("metre", "meter", "m") else f"{unit or 'CRS unit'}\u00b2"


def write_polygons(raster: Path, bands: list[int], classify: Classifier, output: str, options: PolygonOptions,
                   reporter, rows: int | None = None, parameter: str = "OUTPUT_POLYGONS") -> dict:
    """Polygonise ``bands`` of ``raster`` through ``classify`` into the layer ``output``, strip by strip.

    Written under a partial name and renamed once complete, so an interrupted run leaves nothing that looks
    complete. Returns ``{"POLYGONS": count, "POLYGON_AREA": total area, "AREA_UNIT": unit}``.
    """
    check_polygons_path(output, parameter)
    target = Path(output)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(target)
    partial.unlink(missing_ok=True)
    builder, writer = SeamlessPolygons(), _LayerWriter(partial, target.stem, options)
    with rasterio.open(raster) as src:
        writer.crs, transform = src.crs, grid_transform(src)
        rows = rows or strip_rows(Window(0, 0, src.width, src.height), len(bands), POLYGON_STRIP_BYTES)
        for row in range(0, src.height, rows):
            height = min(rows, src.height - row)
            values = src.read(bands, window=Window(0, row, src.width, height))
            ok = valid_pixels(src, bands, values)
            valid = np.ones(values.shape[1:], bool) if ok is None else ok.all(axis=0)
            classes, keep = classify(values, valid)
            writer.add(builder.add(classes, keep), transform)
            reporter.progress(100 * (row + height) / src.height)
    writer.add(builder.finish(), transform)
    summary = writer.close()
    os.replace(partial, target)
    reporter.text(f"{summary['POLYGONS']} polygon(s) of {summary['POLYGON_AREA']:.6g} {summary['AREA_UNIT']} in "
                  f"{target.name}" + (f" (smaller than {options.min_area:g} {summary['AREA_UNIT']} left out)"
                                      if options.min_area else "") + ".")
    return {"OUTPUT_POLYGONS": str(target), **summary}


class _LayerWriter:
    """Batches of finished polygons moved to map coordinates, filtered, simplified and appended to the layer."""

    def __init__(self, path: Path, layer: str, options: PolygonOptions):
        self.path, self.layer, self.options = path, layer, options
        self.crs, self.batch, self.count, self.area, self.written = None, [], 0, 0.0, False
        self.parameters = json.dumps(options.parameters, sort_keys=True, default=str)

    def add(self, pieces: list, transform: Affine) -> None:
        for value, polygon in pieces:
            polygon = _to_map(polygon, transform)
            if polygon.area < self.options.min_area:
                continue
            if self.options.simplify:
                polygon = polygon.simplify(self.options.simplify, preserve_topology=True)
            self.batch.append((value, polygon))
        if len(self.batch) >= WRITE_BATCH:
            self._write()

    def _write(self) -> None:
        import geopandas as gpd  # deferred: geopandas / pandas load only when vector data is written

        values = [value for value, _ in self.batch]
        geometries = [polygon for _, polygon in self.batch]
        frame = gpd.GeoDataFrame({
            "class_value": np.array(values, np.int64),
            "class_name": [self.options.names.get(value, str(value)) for value in values],
            "area": np.array([g.area for g in geometries], np.float64),
            "area_unit": [area_unit(self.crs)] * len(values),
            "source": [self.options.source] * len(values),
            "tool": [self.options.tool] * len(values),
            "parameters": [self.parameters] * len(values)}, geometry=geometries, crs=self.crs)
        frame.to_file(self.path, layer=self.layer, driver=POLYGON_FORMATS[self.path.suffix.lower()],
                      engine="pyogrio", geometry_type="Polygon", **({"mode": "a"} if self.written else {}))
        self.count += len(frame)
        self.area += float(frame["area"].sum())
        self.written, self.batch = True, []

    def close(self) -> dict:
        if self.batch or not self.written:  # an empty layer still has its fields
            self._write()
        return {"POLYGONS": self.count, "POLYGON_AREA": self.area, "AREA_UNIT": area_unit(self.crs)}


def tool_polygons(p, params: dict, raster: Path, classify: Classifier, names: dict[int, str], reporter,
                  bands: tuple[int, ...] = (1,)) -> dict:
    """OUTPUT_POLYGONS of a tool's run (``p`` its parameters, ``params`` as given, recorded in every polygon) from
    its output ``raster``, with MIN_AREA and SIMPLIFY."""
    options = PolygonOptions(Path(raster).name, TOOL_NAMES.get(p.TOOL, p.TOOL), params, names, p.MIN_AREA,
                             p.SIMPLIFY)
    return write_polygons(Path(raster), list(bands), classify, p.OUTPUT_POLYGONS, options, reporter)


#: The ``tool`` attribute of the polygons: the algorithm id.
TOOL_NAMES = {name: f"iamap:{name}" for name in ("cluster", "ml", "similarity", "change")}
