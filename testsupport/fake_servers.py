"""Servers on loopback that are not Dask schedulers, for the SCHEDULER tests: an HTTP server (waits for a
request), a greeter that sends ``greeting`` on every connection (then keeps it open), each in a thread."""

from __future__ import annotations

import contextlib
import http.server
import socket
import struct
import threading

#: The header of a Dask handshake (a 16-byte frame of 1 part) whose part then claims 2**62 bytes: Dask allocates
#: them (a MemoryError), as it does from whatever 8 bytes a service that is not Dask sends first.
DASK_HEADER_THEN_GARBAGE = struct.pack("<QQQ", 16, 1, 2**62)


@contextlib.contextmanager
def http_server():
    """``tcp://127.0.0.1:PORT`` of a standard-library HTTP server."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def greeter(greeting: bytes):
    """``tcp://127.0.0.1:PORT`` of a server that sends ``greeting`` to every connection and holds it open."""
    listener = socket.create_server(("127.0.0.1", 0))
    connections = []

    def serve():
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:  # closed: the test is over
                return
            connections.append(connection)
            with contextlib.suppress(OSError):
                connection.sendall(greeting)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"tcp://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the accept (a close alone leaves the port listening)
        listener.close()
        for connection in connections:
            connection.close()
