"""Versions and hardware of the worker environment, for bug reports (like rasterio's ``show_versions``).

``python -m engine.diagnostics`` prints the report; the ``iamap:diagnostics`` algorithm adds QGIS's side.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys

from . import __version__


def _version(module_name: str) -> str:
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # a broken package is exactly what this report must show
        return f"not importable ({type(exc).__name__}: {exc})"
    version = getattr(module, "__version__", None)
    if version is None:
        from importlib.metadata import PackageNotFoundError, version as dist_version

        try:
            version = dist_version(module_name)
        except PackageNotFoundError:
            version = "unknown"
    return str(version)


def cpu_has_native_bf16() -> bool:
    """True when the CPU has bf16 instructions (AVX512-BF16 or AMX), where bf16 beats fp32."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def collect() -> dict:
    info = {
        "iamap engine": __version__,
        "python": sys.version.split()[0],
        "python executable": sys.executable,
        "platform": platform.platform(),
        "cpu count": os.cpu_count(),
        "cpu native bf16": cpu_has_native_bf16(),
    }
    for name in ("numpy", "torch", "torchvision", "timm", "torchgeo", "sklearn", "umap", "hdbscan", "rasterio",
                 "geopandas", "pyogrio", "shapely", "pyproj", "pandas", "huggingface_hub", "safetensors"):
        info[name] = _version(name)
    try:
        import rasterio

        info["gdal (rasterio)"] = rasterio.__gdal_version__
        info["proj (rasterio)"] = getattr(rasterio, "__proj_version__", "unknown")
    except Exception as exc:
        info["gdal (rasterio)"] = f"unavailable ({exc})"
    try:
        import torch

        info["torch threads"] = torch.get_num_threads()
        info["cuda available"] = torch.cuda.is_available()
        if torch.cuda.is_available():
            info["cuda version"] = torch.version.cuda
            info["cuda devices"] = [f"{i}: {torch.cuda.get_device_name(i)}" for i in range(torch.cuda.device_count())]
        info["mps available"] = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    except Exception as exc:
        info["cuda available"] = f"unknown ({exc})"
    info["hf cache"] = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME", os.path.join(os.path.expanduser("~"), ".cache", "huggingface")), "hub")
    info["torch hub cache"] = os.path.join(os.environ.get("TORCH_HOME", os.path.join(os.path.expanduser("~"), ".cache", "torch")), "hub")
    return info


def format_report(info: dict) -> str:
    width = max(map(len, info))
    return "\n".join(f"{key:>{width}}: {value}" for key, value in info.items())


def run_diagnostics(params: dict, reporter) -> dict:
    info = collect()
    reporter.text(format_report(info))
    return {"worker": info}


if __name__ == "__main__":
    print(format_report(collect()))
