"""Shared test set-up: the repository root (the plugin folder) on sys.path, and paths to test data."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

ASSETS = REPO.parent / "shared" / "data" / "iamap-assets"


@pytest.fixture(scope="session")
def assets() -> Path:
    """The shared real-data folder (``../shared/data/iamap-assets``); tests using it skip when it is absent."""
    if not (ASSETS / "test.tif").exists():
        pytest.skip(f"shared test data not found at {ASSETS}")
    return ASSETS


@pytest.fixture(scope="session", autouse=True)
def runtime_cache(tmp_path_factory) -> Path:
    """Exported models (engine.openvino_runtime) go to one folder per test session, never the user's cache; worker
    processes the tests start inherit it."""
    folder = tmp_path_factory.mktemp("runtime-cache")
    os.environ["IAMAP_RUNTIME_CACHE"] = str(folder)
    return folder
