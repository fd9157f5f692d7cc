"""A raster that opens but cannot be read to the end (a VRT whose source file is gone, a truncated or damaged
GeoTIFF): GDAL's read error made a message naming the input parameter and its file, instead of an internal error.

Standard library only: recognised by the exception classes' names (rasterio's ``RasterioIOError`` with GDAL's
``CPLE_*`` errors as its cause), so :func:`engine.destinations.guarded_run` can use it for every tool.
"""

from __future__ import annotations

from pathlib import Path

from .errors import IamapError, ParameterError
from .parameters import input_files

#: Words of GDAL's read errors (its write errors are :func:`engine.destinations.disk_full_error`'s).
READ_MARKERS = ("Read failed", "read failed", "ReadBlock failed", "IReadBlock failed", "TIFFReadEncoded",
                "No such file or directory", "Permission denied")


def read_failure_error(tool: str, params: dict, exc: BaseException) -> IamapError | None:
    """The user's message for a failed raster read during ``tool``'s run (None for any other error)."""
    chain, cause = [], exc
    while cause is not None and len(chain) < 10:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    gdal = [e for e in chain if type(e).__name__ == "RasterioIOError" or type(e).__name__.startswith("CPLE_")]
    text = " ".join(str(e) for e in gdal)
    if not gdal or not any(marker in text for marker in READ_MARKERS) or "Write failed" in text:
        return None
    inputs = input_files(tool, params)
    if not inputs:
        return None
    name = next((n for n, path in inputs.items() if Path(path).name in text), next(iter(inputs)))
    detail = str(gdal[-1])  # the deepest: GDAL's own words ("/data/a.tif: No such file or directory")
    return ParameterError(name, f"{inputs[name]} opens but could not be read ({detail}). The file is damaged or "
                                "truncated, or it refers to a file that is missing or unreadable (a VRT's source "
                                f"files): check that it shows every pixel in QGIS, or recreate it. Nothing was "
                                "written under the final output name.")
