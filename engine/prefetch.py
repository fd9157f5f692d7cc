"""Reading ahead: an iterator's next items produced by a thread while the caller works on the current one.

The block-wise passes alternate reading a strip (GDAL: decompression, I/O) and computing on it (scikit-learn,
torch, numpy); both release the GIL, so a reader one strip ahead overlaps them. Memory grows by ``depth``
items (strips), not more.
"""

from __future__ import annotations

import queue
import threading
from typing import TypeVar
from collections.abc import Iterable, Iterator

Item = TypeVar("Item")
#: Seconds the reader waits for room before checking whether the caller has stopped.
_POLL = 0.1


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


_END = object()


def prefetched(items: Iterable[Item], depth: int = 1) -> Iterator[Item]:
    """Yield ``items`` in order, each produced by a background thread up to ``depth`` items ahead.

    An exception of the producer is raised in the caller at the item where it happened. When the caller stops
    early (an error, or closing the generator), the producer stops too, after the item it is producing: the
    source (an open raster) is never used by two threads at once, and is free once this returns.
    """
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(value) -> bool:
        while not stop.is_set():
            try:
                buffer.put(value, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as error:  # handed to the caller, who raises it
            put(_Failure(error))
            return
        put(_END)

    thread = threading.Thread(target=produce, name="iamap-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = buffer.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join()
