"""The host side's command line: install, plan, check and self-test the worker environment.

Standard library only. From the plugin folder (the install dialog runs the same ``install`` with ``--events``)::

    python3 -m engine.host.environment install [--torch-build auto|cpu|cu130|cu128|cu126|default] [--dir DIR]
                                               [--dev] [--force] [--events]
    python3 -m engine.host.environment plan [--torch-build ...]   # what install would do, without installing
    python3 -m engine.host.environment check
    python3 -m engine.host.environment self-test                  # the installed environment's self-test
    python3 -m engine.host.environment python     # prints the worker's python, or fails with the install hint
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import EnvironmentProblem
from . import install
from .status import check_environment, worker_python
from .torch_build import BUILD_NAMES

COMMAND = "python3 -m engine.host.environment"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("install", "create or repair the managed environment"),
                       ("plan", "print what install would do, without installing")):
        command = sub.add_parser(name, help=text)
        command.add_argument("--torch-build", choices=("auto", *BUILD_NAMES), default="auto",
                             help="PyTorch build (default auto: CUDA when an NVIDIA driver is found, else CPU-only)")
        command.add_argument("--dir", type=Path, default=None, help="environment folder (default: user data folder)")
        command.add_argument("--dev", action="store_true", help="also install the test requirements")
        if name == "install":
            command.add_argument("--force", action="store_true", help="reinstall even when up to date")
            command.add_argument("--events", action="store_true", help="JSON-lines events on stdout (install dialog)")
    sub.add_parser("check", help="say whether the environment is ready")
    sub.add_parser("self-test", help="run the self-test of the installed environment")
    sub.add_parser("python", help="print the worker's python")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command of the command line; return its exit status."""
    args = _parser().parse_args(argv)
    if args.command in ("install", "plan", "self-test"):
        return install.main(args)
    try:
        if args.command == "check":
            status = check_environment()
            print(f"{'ready' if status.complete else 'NOT READY'}: {status.python} ({status.source}) {status.problem}")
            return 0 if status.complete else 1
        print(worker_python())
    except EnvironmentProblem as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
