"""The worker's event stream: JSON lines, JSON-safe values, progress throttling, stages, the null reporter, and
stdout claimed for events only."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from engine import events
from engine.events import NULL_REPORTER, NullReporter, Reporter, StageReporter, json_safe

from ..conftest import REPO


class Clock:
    """A stand-in for ``time.monotonic`` that moves only when told."""

    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(events.time, "monotonic", fake)
    return fake


def percents(reporter):
    return [e["percent"] for e in reporter.events if e["type"] == "progress"]


def test_every_event_is_one_json_line_on_the_stream():
    stream = io.StringIO()
    reporter = Reporter(stream)
    reporter.text("reading\nthe input")  # a newline inside a message stays inside its line
    reporter.warning("random weights")
    reporter.error("STRIDE: bad", "Traceback ...")
    reporter.progress(100)
    reporter.result({"OUTPUT": "out.tif", "tiles": np.int64(4)})
    lines = stream.getvalue().splitlines()
    assert [json.loads(line) for line in lines] == reporter.events == [
        {"type": "text", "message": "reading\nthe input"},
        {"type": "warning", "message": "random weights"},
        {"type": "error", "message": "STRIDE: bad", "traceback": "Traceback ...", "internal": False},
        {"type": "progress", "percent": 100.0},
        {"type": "result", "outputs": {"OUTPUT": "out.tif", "tiles": 4}},
    ]


def test_without_a_stream_events_are_only_kept():
    reporter = Reporter()
    reporter.text("kept")
    assert reporter.events == [{"type": "text", "message": "kept"}]


def test_clean_makes_numpy_scalars_non_finite_floats_and_paths_json_safe():
    value = {
        "f32": np.float32(1.5), "i64": np.int64(7), "flag": np.bool_(True), "nan": float("nan"),
        "np_nan": np.float64("nan"), "inf": -math.inf, "path": Path("/data/out.tif"), 3: "key made text",
        "nested": [np.float32(0.25), (np.int16(2), None)], "zero_d": np.array(2.5),
    }
    cleaned = json_safe(value)
    assert cleaned == {"f32": 1.5, "i64": 7, "flag": True, "nan": None, "np_nan": None, "inf": None,
                       "path": "/data/out.tif", "3": "key made text", "nested": [0.25, [2, None]], "zero_d": 2.5}
    assert type(cleaned["i64"]) is int and type(cleaned["flag"]) is bool and type(cleaned["f32"]) is float
    json.dumps(cleaned, allow_nan=False)  # strict JSON: no NaN token


def test_progress_is_throttled_to_half_a_percent_and_a_fifth_of_a_second(clock):
    reporter = Reporter()
    reporter.progress(10)
    clock.now += 1
    reporter.progress(10.4)  # 0.4 %: too small a step
    clock.now += 0.1
    reporter.progress(30)  # 1.1 s and 20 % since the last emitted one: emitted
    clock.now += 0.1
    reporter.progress(40)  # 0.1 s later: too soon
    clock.now += 0.15
    reporter.progress(40.2)  # 0.25 s later and 10.2 %: emitted
    clock.now += 5
    reporter.progress(40.6)  # a long time but only 0.4 %
    assert percents(reporter) == [10, 30, 40.2]


def test_force_and_100_are_always_emitted_and_values_are_clamped(clock):
    reporter = Reporter()
    reporter.progress(50)
    reporter.progress(50.1, force=True)
    reporter.progress(100)
    reporter.progress(100)
    reporter.progress(250)
    reporter.progress(-5)  # backwards, not forced: dropped
    reporter.progress(-5, force=True)
    reporter.progress(33.33333)  # back up from 0, but no time has passed
    clock.now += 1
    reporter.progress(33.33333)
    assert percents(reporter) == [50, 50.1, 100, 100, 100, 0, 33.33]


def test_stages_map_nested_progress_into_the_parents_range(clock):
    reporter = Reporter()
    fit = reporter.stage(20, 60)
    assert isinstance(fit, StageReporter)
    fit.progress(50, force=True)  # 20 + 40 * 0.5
    inner = fit.stage(50, 100)  # 40 % .. 60 % of the whole
    inner.progress(0, force=True)
    inner.progress(50, force=True)  # 40 + 20 * 0.5
    inner.progress(150, force=True)  # clamped to the stage's end
    inner.progress(-10, force=True)  # clamped to the stage's start
    assert percents(reporter) == [40, 40, 50, 60, 40]
    inner.text("via the stage")
    inner.warning("also")
    assert reporter.events[-2:] == [{"type": "text", "message": "via the stage"},
                                    {"type": "warning", "message": "also"}]


def test_stage_progress_is_throttled_by_the_parent(clock):
    reporter = Reporter()
    stage = reporter.stage(0, 10)
    stage.progress(10)  # 1 %
    stage.progress(20)  # 2 %, no time passed
    clock.now += 1
    stage.progress(23)  # 2.3 %: 1.3 % since the last emitted one
    assert percents(reporter) == [1, 2.3]


def test_null_reporter_drops_everything():
    for reporter in (NullReporter(), NULL_REPORTER):
        reporter.text("x")
        reporter.warning("x")
        reporter.error("x", "tb")
        reporter.progress(100, force=True)
        reporter.result({"a": 1})
        reporter.stage(0, 50).progress(100, force=True)
        reporter.stage(0, 50).text("y")
        assert reporter.events == []
    assert NullReporter(io.StringIO()).stream.getvalue() == ""


CLAIM_SCRIPT = """
import os, sys
from engine.events import Reporter, claim_stdout

events = claim_stdout()
print("a library printing")
os.write(1, b"C code writing to fd 1\\n")
sys.stdout.write("sys.stdout after the claim\\n")
sys.stdout.flush()
Reporter(events).text("the event")
"""


def test_claim_stdout_sends_stray_output_to_stderr_and_keeps_stdout_for_events():
    process = subprocess.run([sys.executable, "-c", textwrap.dedent(CLAIM_SCRIPT)], cwd=REPO, capture_output=True,
                             text=True, timeout=60)
    assert process.returncode == 0, process.stderr
    assert process.stdout == '{"type": "text", "message": "the event"}\n'
    for stray in ("a library printing", "C code writing to fd 1", "sys.stdout after the claim"):
        assert stray in process.stderr
