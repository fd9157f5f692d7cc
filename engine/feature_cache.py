"""The similarity explorer's persistent cache of feature stores: where it is, which folder holds a raster's
store (keyed by the fingerprint of every file GDAL reads for it), whether a store may go in, and eviction.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

from .raster_writing import file_fingerprint
from .user_cache import cache_dir as user_cache_dir

#: The persistent cache of stores (:class:`engine.feature_store.FeatureStore` ``cache``): at most this many bytes in all
#: (the least recently used stores go first; 3.75 GiB for a 2048 x 2048 x 384 raster and its preview), only stores of at
#: least CACHE_MIN_BYTES, and never filling the disk beyond CACHE_FREE_BYTES free.
CACHE_BYTES = 12 * 2**30
CACHE_MIN_BYTES = 256 * 2**20
CACHE_FREE_BYTES = 4 * 2**30
#: A store's files: its record (written last: a folder without it is incomplete), and what marks a half-built one.
STORE_RECORD = "store.json"
PARTIAL = ".partial-"
#: Changes when the stored layout does (older stores are then never found, and evicted in time).
STORE_VERSION = 1


def default_cache_dir() -> Path | None:
    """Where the explorer keeps its stores (see :func:`engine.user_cache.cache_dir`)."""
    return user_cache_dir("IAMAP_EXPLORER_CACHE", "explorer")


def cache_entry(src, bands: list[int], cache: Path) -> Path | None:
    """The folder of ``cache`` for the store of ``src``'s ``bands``, None when it is not cached: a raster that is
    not a plain file (nothing to fingerprint) or whose store is under :data:`CACHE_MIN_BYTES` (loaded in well
    under a second anyway)."""
    path = Path(src.name)
    if src.height * src.width * len(bands) * 2 < CACHE_MIN_BYTES or not path.is_file():
        return None
    # every file GDAL reads for the raster: a VRT's sources, an .aux.xml with nodata or metadata, not only src.name
    files = sorted({str(Path(f).resolve()) for f in (src.files or [src.name]) if Path(f).is_file()}
                   | {str(path.resolve())})
    key = {"raster": str(path.resolve()), "files": {f: file_fingerprint(Path(f)) for f in files},
           "bands": list(bands), "version": STORE_VERSION}
    return cache / hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]


def has_room(cache: Path, size: int) -> bool:
    """Whether a store of ``size`` bytes may go to ``cache``: within :data:`CACHE_BYTES` and leaving
    :data:`CACHE_FREE_BYTES` free on its disk."""
    if size > CACHE_BYTES:
        return False
    try:
        cache.mkdir(parents=True, exist_ok=True)
        return shutil.disk_usage(cache).free - size >= CACHE_FREE_BYTES
    except OSError:
        return False


def evict(cache: Path, keep: Path) -> None:
    """Remove the least recently used stores of ``cache`` until they hold at most :data:`CACHE_BYTES` (``keep``
    stays), and the half-built ones a killed explorer left a day ago or more."""
    stores, now = [], time.time()
    for folder in cache.iterdir():
        try:
            if PARTIAL in folder.name:
                if now - folder.stat().st_mtime > 86400:
                    shutil.rmtree(folder, ignore_errors=True)
            elif (folder / STORE_RECORD).exists():
                size = sum(part.stat().st_size for part in folder.iterdir())
                stores.append(((folder / STORE_RECORD).stat().st_mtime, size, folder))
        except OSError:  # removed meanwhile by another explorer
            continue
    total = sum(size for _, size, _ in stores)
    for _, size, folder in sorted(stores, key=lambda store: store[0]):
        if total <= CACHE_BYTES:
            break
        if folder != keep:
            shutil.rmtree(folder, ignore_errors=True)
            total -= size
