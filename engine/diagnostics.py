"""Versions and hardware of the worker environment, for bug reports (like rasterio's ``show_versions``).

``python -m engine.diagnostics`` prints the report; the ``iamap:diagnostics`` algorithm adds QGIS's side.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version

from . import __version__
from .devices import cpu_has_native_bf16
from .models import hf_cache_dir


def installed_version(distribution: str, module: str | None = None) -> str:
    """Version of an installed package, the one helper for version strings (bug reports, model records).

    With ``module`` the package is imported, so a broken install shows as "not importable (...)" (what a bug
    report must show); without, only the distribution's metadata is read (cheap, nothing is imported).
    """
    if module is not None:
        try:
            imported = importlib.import_module(module)
        except Exception as exc:
            return f"not importable ({type(exc).__name__}: {exc})"
        if getattr(imported, "__version__", None) is not None:
            return str(imported.__version__)
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "unknown" if module is not None else "not installed"


def collect() -> dict:
    """The worker side's versions and hardware, as a flat dict."""
    info = {
        "iamap engine": __version__,
        "python": sys.version.split()[0],
        "python executable": sys.executable,
        "platform": platform.platform(),
        "cpu count": os.cpu_count(),
        "cpu native bf16": cpu_has_native_bf16(),
    }
    for name in ("numpy", "torch", "torchvision", "timm", "torchgeo", "sklearn", "umap", "hdbscan", "rasterio",
                 "geopandas", "pyogrio", "shapely", "pyproj", "pandas", "huggingface_hub", "safetensors", "skops"):
        info[name] = installed_version(name, module=name)
    try:
        # deferred: a package that is missing or broken is reported, not raised
        import rasterio

        info["gdal (rasterio)"] = rasterio.__gdal_version__
        info["proj (rasterio)"] = getattr(rasterio, "__proj_version__", "unknown")
    except Exception as exc:
        info["gdal (rasterio)"] = f"unavailable ({exc})"
    try:
        # deferred: a package that is missing or broken is reported, not raised
        import torch

        info["torch threads"] = torch.get_num_threads()
        info["cuda available"] = torch.cuda.is_available()
        if torch.cuda.is_available():
            info["cuda version"] = torch.version.cuda
            info["cuda devices"] = [f"{i}: {torch.cuda.get_device_name(i)}" for i in range(torch.cuda.device_count())]
        info["mps available"] = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    except Exception as exc:
        info["cuda available"] = f"unknown ({exc})"
    info["hf cache"] = hf_cache_dir()
    torch_home = os.environ.get("TORCH_HOME", os.path.join(os.path.expanduser("~"), ".cache", "torch"))
    info["torch hub cache"] = os.path.join(torch_home, "hub")
    return info


def format_report(info: dict) -> str:
    """``info`` as aligned ``key: value`` lines."""
    width = max(map(len, info))
    return "\n".join(f"{key:>{width}}: {value}" for key, value in info.items())


def run_diagnostics(params: dict, reporter) -> dict:
    """The diagnostics tool: the report in the log, and as JSON and HTML when asked for."""
    info = collect()
    reporter.text(format_report(info))
    return {"worker": info}


if __name__ == "__main__":
    print(format_report(collect()))
