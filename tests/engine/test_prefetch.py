"""Reading ahead: items come in order, one ahead at most, errors reach the caller where they happened, and a
caller that stops early stops the reader."""

from __future__ import annotations

import threading
import time

import pytest

from engine.prefetch import prefetched


def test_items_come_in_order_and_the_reader_is_at_most_depth_ahead():
    produced = []

    def items():
        for i in range(6):
            produced.append(i)
            yield i

    seen = []
    for item in prefetched(items(), depth=1):
        time.sleep(0.05)  # the reader fills the buffer meanwhile
        # this item, one in the buffer, and one the reader holds while waiting for room
        assert len(produced) <= item + 3
        seen.append(item)
    assert seen == list(range(6))


def test_the_producers_error_is_raised_at_its_place():
    def items():
        yield 1
        raise OSError("disk gone")

    got = []
    with pytest.raises(OSError, match="disk gone"):
        for item in prefetched(items()):
            got.append(item)
    assert got == [1]


def test_a_caller_that_stops_early_stops_the_reader():
    produced = []

    def items():
        for i in range(1000):
            produced.append(i)
            yield i

    for item in prefetched(items()):
        if item == 2:
            break
    time.sleep(0.3)
    assert len(produced) <= 5
    assert not [t for t in threading.enumerate() if t.name == "iamap-prefetch"]


def test_the_next_item_is_read_while_the_caller_works_on_this_one():
    next_read = threading.Event()

    def items():
        yield 0
        yield 1
        next_read.set()
        yield 2

    for item in prefetched(items(), depth=2):
        if item == 0:  # the caller still holds item 0: the reader has already produced item 1 and gone on
            assert next_read.wait(5)
