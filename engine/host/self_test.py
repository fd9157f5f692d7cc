"""Self-test of a worker environment, run inside it after an install: ``python -m engine.host.self_test``.

Checks what the requirement set promises: every requirement imports; with torch, a tiny forward pass on the
chosen device; with rasterio, the worker's own GDAL and PROJ write, read and reproject. Each check prints one
JSON line ``{"check": ..., "ok": ..., "detail": ...}`` as soon as it is done, so a crash (a segfault in a
library) still leaves the earlier results; the exit status is 0 only when every check passed.

Standard library at module level: it must report, not crash, when a package is missing.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
import tempfile
import time
from pathlib import Path

#: Distribution names whose import name differs (others: lower case, "-" -> "_").
IMPORT_NAMES = {"scikit-learn": "sklearn", "umap-learn": "umap", "pillow": "PIL", "pyyaml": "yaml"}


def requirement_names(path: Path) -> list[str]:
    """Distribution names of a requirements file (versions, markers and ``name @ url`` references dropped)."""
    names = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        found = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line)
        if found and not line.startswith("-"):
            names.append(found.group(0))
    return names


def import_name(distribution: str) -> str:
    """The module a distribution is imported as (``scikit-learn`` -> ``sklearn``)."""
    return IMPORT_NAMES.get(distribution.lower(), distribution.lower().replace("-", "_"))


def check_imports(distributions: list[str]) -> tuple[bool, str]:
    """Import every distribution; (all imported, their versions or what failed)."""
    loaded, failed = [], []
    for distribution in distributions:
        try:
            module = importlib.import_module(import_name(distribution))
        except Exception as exc:  # any import-time failure (missing shared library...) is what must be reported
            failed.append(f"{distribution}: {type(exc).__name__}: {exc}")
            continue
        loaded.append(f"{distribution} {getattr(module, '__version__', '')}".strip())
    if failed:
        return False, "cannot import " + "; ".join(failed)
    return True, ", ".join(loaded)


def check_forward_pass(device_name: str, use_timm: bool) -> tuple[bool, str]:
    """A tiny ViT forward pass on ``device_name``; (passed, what ran and how long)."""
    # deferred: imported by QGIS's Python too (stdlib only); the packages it checks load in the checks
    import torch

    if device_name == "auto":
        device_name = "cuda" if torch.cuda.is_available() else "cpu"
    if device_name == "cuda" and not torch.cuda.is_available():
        return False, (f"this is PyTorch's CUDA {torch.version.cuda} build but it sees no usable GPU (driver too old "
                       "or no NVIDIA GPU); install the CPU build or update the NVIDIA driver")
    device = torch.device(device_name)
    started = time.perf_counter()
    if use_timm:
        # deferred: imported by QGIS's Python too (stdlib only); the packages it checks load in the checks
        import timm

        # one block and a 32 px input: seconds on any CPU, yet the same layers as the curated backbones
        model = timm.create_model("vit_small_patch16_224", pretrained=False, img_size=32, depth=1, num_classes=0)
        what = "timm ViT-S/16 (1 block, random weights)"
    else:
        model = torch.nn.Conv2d(3, 8, 3)
        what = "torch Conv2d"
    model = model.to(device).eval()
    with torch.no_grad():
        output = model(torch.rand(2, 3, 32, 32, device=device))
    if not bool(torch.isfinite(output).all()):
        return False, f"{what} on {device} gave non-finite values"
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return True, (f"{what} on {device} ({name}), torch {torch.__version__}: output {tuple(output.shape)} in "
                  f"{time.perf_counter() - started:.2f} s")


def check_gdal_proj() -> tuple[bool, str]:
    """The worker's GDAL and PROJ write, read and reproject a small GeoTIFF; (passed, detail)."""
    # deferred: imported by QGIS's Python too (stdlib only); the packages it checks load in the checks
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.warp import transform

    with tempfile.TemporaryDirectory(prefix="iamap-self-test-") as folder:
        path = Path(folder) / "probe.tif"
        profile = {"driver": "GTiff", "width": 4, "height": 4, "count": 1, "dtype": "uint8", "crs": "EPSG:32631",
                   "transform": from_origin(500000, 100, 10, 10)}
        with rasterio.open(path, "w", **profile) as dataset:
            dataset.write(np.arange(16, dtype="uint8").reshape(1, 4, 4))
        with rasterio.open(path) as dataset:
            if dataset.crs.to_epsg() != 32631 or int(dataset.read(1)[3, 3]) != 15:
                return False, "a GeoTIFF written by the worker's GDAL did not read back the same"
    lon, lat = transform("EPSG:32631", "EPSG:4326", [500000], [0])
    if abs(lon[0] - 3.0) > 1e-6 or abs(lat[0]) > 1e-6:
        return False, f"PROJ put UTM 31N (500000, 0) at ({lon[0]}, {lat[0]}) instead of (3, 0): its database is wrong"
    return True, (f"GDAL {rasterio.__gdal_version__}, PROJ {getattr(rasterio, '__proj_version__', '?')}: GeoTIFF "
                  "written and read back, UTM 31N -> WGS 84 exact")


def run_checks(distributions: list[str], device: str):
    """Yield ``(check, ok, detail)``; skipped checks say why."""
    names = {name.lower() for name in distributions}
    yield ("imports", *check_imports(distributions))
    checks = (("forward pass", "torch", lambda: check_forward_pass(device, "timm" in names)),
              ("GDAL/PROJ", "rasterio", check_gdal_proj))
    for check, needs, run in checks:
        if needs not in names:
            yield check, True, f"skipped: {needs} is not in the requirement set"
            continue
        try:
            yield (check, *run())
        except Exception as exc:
            yield check, False, f"{type(exc).__name__}: {exc}"


def main(argv: list[str] | None = None) -> int:
    """Run the self-test's checks, one JSON line each; exit status 0 when all passed."""
    parser = argparse.ArgumentParser(prog="python -m engine.host.self_test", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requirements", type=Path, required=True, help="the requirements file installed")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    args = parser.parse_args(argv)
    passed = True
    for check, ok, detail in run_checks(requirement_names(args.requirements), args.device):
        passed &= ok
        print(json.dumps({"check": check, "ok": ok, "detail": detail}), flush=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
