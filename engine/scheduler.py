"""The SCHEDULER parameter: a Dask scheduler's address, checked by connecting to it (standard library only).

The parameter conversion (:mod:`engine.parameters`) checks it before a run starts, and the Dask client
(:mod:`engine.scale_out`) connects to what it returns.
"""

from __future__ import annotations

import socket
from urllib.parse import urlparse

from .errors import ParameterError

#: Seconds to reach the scheduler before failing.
CONNECT_SECONDS = 5


def start_hint(address: str) -> str:
    """How to start a scheduler and its workers, for the errors that name ``address``."""
    return (f"Start a scheduler with \u201cdask scheduler\u201d (it prints its address), then on each machine "
            f"\u201cdask worker {address}\u201d after \u201cpip install <IAMAP plugin folder>\u201d there; or leave "
            "SCHEDULER empty to run on this machine.")


def scheduler_address(text: str) -> tuple[str, str, int]:
    """``(address, host, port)`` of a SCHEDULER value (``tcp://host:port``; ``host:port`` means tcp)."""
    text = text.strip()
    address = text if "://" in text else f"tcp://{text}"
    parsed = urlparse(address)
    try:
        port = parsed.port
    except ValueError:
        port = None
    if parsed.scheme not in ("tcp", "tls") or not parsed.hostname or port is None:
        raise ParameterError("SCHEDULER", f"{text!r} is not a Dask scheduler address: give tcp://host:port, for "
                                          "example tcp://192.168.1.10:8786 (what \u201cdask scheduler\u201d prints).")
    return address, parsed.hostname, port


def check_scheduler(text: str) -> str:
    """The scheduler's address, once a TCP connection to it succeeds (within :data:`CONNECT_SECONDS`)."""
    address, host, port = scheduler_address(text)
    try:
        socket.create_connection((host, port), timeout=CONNECT_SECONDS).close()
    except OSError as exc:
        reason = "no answer" if isinstance(exc, socket.timeout) else (exc.strerror or str(exc))
        raise ParameterError("SCHEDULER", f"cannot reach a Dask scheduler at {address} ({reason}). "
                                          + start_hint(address)) from None
    return address
