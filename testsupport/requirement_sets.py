"""Small requirement sets for the install tests: the real install code path with seconds of pip instead of gigabytes.

Each returns the environment variables (``IAMAP_REQUIREMENTS`` / ``IAMAP_CONSTRAINTS``) that point the installer
at it. ``six`` comes from the package index (tiny, pure Python); the others are local packages made here.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

SIX_VERSION = "1.16.0"


def requirement_set(folder: Path, requirements: list[str], constraints: list[str] = ()) -> dict:
    """Write ``requirements`` and ``constraints`` into ``folder``; return the variables pointing the installer there."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "requirements.txt").write_text("\n".join(requirements) + "\n")
    (folder / "constraints.txt").write_text("".join(f"{line}\n" for line in constraints))
    return {"IAMAP_REQUIREMENTS": str(folder / "requirements.txt"),
            "IAMAP_CONSTRAINTS": str(folder / "constraints.txt")}


def six_set(folder: Path) -> dict:
    """``six`` pinned, from the package index."""
    return requirement_set(folder, ["six"], [f"six=={SIX_VERSION}"])


def slow_set(folder: Path) -> tuple[dict, Path]:
    """A local package whose build back-end writes its process id to the returned file, then sleeps for ten
    minutes: pip is busy in a grandchild process until it is killed."""
    package = folder / "slowpkg"
    package.mkdir(parents=True)
    pid_file = folder / "backend.pid"
    (package / "pyproject.toml").write_text('[build-system]\nrequires = []\nbuild-backend = "slow_backend"\n'
                                            'backend-path = ["."]\n')
    (package / "slow_backend.py").write_text(
        "import os, time\n"
        "def get_requires_for_build_wheel(config_settings=None):\n"
        f"    open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "    print('slow_backend: building for ten minutes', flush=True)\n"
        "    time.sleep(600)\n"
        "    return []\n")
    return requirement_set(folder, [f"slowpkg @ {package.as_uri()}"]), pid_file


def broken_set(folder: Path) -> dict:
    """``six`` plus a local wheel that installs fine but cannot be imported: the self-test must fail."""
    wheel = folder / "brokenpkg-1.0-py3-none-any.whl"
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "brokenpkg/__init__.py": "raise ImportError('brokenpkg is broken on purpose (IAMAP install tests)')\n",
        "brokenpkg-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: brokenpkg\nVersion: 1.0\n",
        "brokenpkg-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: iamap-tests\nRoot-Is-Purelib: true\n"
                                         "Tag: py3-none-any\n",
    }
    record = [f"{name},sha256={_digest(text)},{len(text.encode())}" for name, text in files.items()]
    files["brokenpkg-1.0.dist-info/RECORD"] = "\n".join(record + ["brokenpkg-1.0.dist-info/RECORD,,"]) + "\n"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return requirement_set(folder, ["six", f"brokenpkg @ {wheel.as_uri()}"], [f"six=={SIX_VERSION}"])


def _digest(text: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
