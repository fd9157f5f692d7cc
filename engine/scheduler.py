"""The SCHEDULER parameter: a Dask scheduler's address, checked by connecting to it (standard library only).

The parameter conversion (:mod:`engine.parameters`) checks it before a run starts, and the Dask client
(:mod:`engine.scale_out`) connects to what it returns.

Dask's own client waits for the scheduler's handshake without a time limit, and reads the first 8 bytes it gets
as the length of a message to allocate. So something else at the address (a web server waiting for a request,
a service that answers with text) would hang the run or look like a lack of memory. A Dask scheduler speaks
first: on a new connection it sends its handshake at once, a frame whose header is two small little-endian
64-bit numbers (the frame's length, the count of its parts). A ``tcp://`` address is checked for that header
within :data:`HANDSHAKE_SECONDS`; ``tls://`` cannot be (the client speaks first), and is checked by connecting.
"""

from __future__ import annotations

import socket
import struct
import time
from urllib.parse import urlparse

from .errors import ParameterError

#: Seconds to reach the scheduler before failing.
CONNECT_SECONDS = 5
#: Seconds a Dask scheduler takes at most to send its handshake on a new connection (it sends it at once).
HANDSHAKE_SECONDS = 5
#: Largest handshake frame and part count a Dask scheduler sends (its handshake is about 60 bytes in 1 part).
_HANDSHAKE_BYTES, _HANDSHAKE_PARTS = 2**20, 64


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
        connection = socket.create_connection((host, port), timeout=CONNECT_SECONDS)
    except OSError as exc:
        reason = "no answer" if isinstance(exc, socket.timeout) else (exc.strerror or str(exc))
        raise ParameterError("SCHEDULER", f"cannot reach a Dask scheduler at {address} ({reason}). "
                                          + start_hint(address)) from None
    with connection:
        problem = "" if address.startswith("tls://") else _handshake_problem(connection)
    if problem:
        raise ParameterError("SCHEDULER", f"something answers at {address}, but not a Dask scheduler: {problem}. "
                                          "Check the host and port (a scheduler listens on 8786 by default; its "
                                          "dashboard, 8787, is a web page, not the scheduler). " + start_hint(address))
    return address


def _handshake_problem(connection: socket.socket) -> str:
    """What is wrong with the first bytes ``connection`` receives, for a Dask scheduler; "" when they are the
    header of its handshake (see the module notes)."""
    header = b""
    deadline = time.monotonic() + HANDSHAKE_SECONDS
    try:
        while len(header) < 16:
            connection.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = connection.recv(16 - len(header))
            if not chunk:
                return "it closed the connection without a word" + (f" after {header!r}" if header else "")
            header += chunk
    except TimeoutError:
        return (f"it sent {'only ' + repr(header) if header else 'nothing'} within {HANDSHAKE_SECONDS} s, where a "
                "scheduler greets at once (a web server, for example, waits for a request)")
    except OSError as exc:
        return f"the connection failed ({exc.strerror or exc})"
    length, parts = struct.unpack("<QQ", header)
    if not (16 <= length <= _HANDSHAKE_BYTES and 1 <= parts <= _HANDSHAKE_PARTS):
        return f"it sent {header.decode('latin-1')!r}, which is not a Dask message"
    return ""
