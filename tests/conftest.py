"""Shared test set-up: the repository root (the plugin folder) on sys.path, and paths to test data."""

from __future__ import annotations

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
