"""The user's cache folder for what IAMAP can rebuild (explorer stores, runtime exports)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(variable: str, name: str) -> Path | None:
    """The environment variable ``variable`` when it is set (empty: no cache), else the user's cache folder
    (``%LOCALAPPDATA%`` on Windows, ``$XDG_CACHE_HOME`` or ``~/.cache`` elsewhere) / iamap / ``name``."""
    if variable in os.environ:
        return Path(os.environ[variable]) if os.environ[variable] else None
    base = os.environ.get("LOCALAPPDATA") if os.name == "nt" else os.environ.get("XDG_CACHE_HOME")
    return Path(base or Path.home() / ".cache") / "iamap" / name
