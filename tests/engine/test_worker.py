"""The worker's command line and its JSON-lines protocol."""

from __future__ import annotations

import json
import subprocess
import sys

from engine.events import Reporter
from engine.worker import run_tool

from ..conftest import REPO


def run_worker_process(tool: str, params: dict, tmp_path) -> tuple[int, list[dict], str]:
    params_path = tmp_path / "params.json"
    params_path.write_text(json.dumps(params))
    process = subprocess.run([sys.executable, "-m", "engine.worker", tool, str(params_path)], cwd=REPO,
                             capture_output=True, text=True, timeout=120)
    return process.returncode, [json.loads(line) for line in process.stdout.splitlines()], process.stderr


def test_events_are_json_lines_ending_with_a_result(tmp_path):
    code, events, _ = run_worker_process("sleep", {"seconds": 0.5}, tmp_path)
    assert code == 0
    kinds = [e["type"] for e in events]
    assert kinds[-1] == "result" and events[-1]["outputs"] == {"slept": 0.5}
    percents = [e["percent"] for e in events if e["type"] == "progress"]
    assert percents == sorted(percents) and percents[-1] == 100


def test_print_from_a_library_goes_to_stderr_not_the_event_stream(tmp_path):
    said = "a library talking on stdout"
    code, events, stderr = run_worker_process("sleep", {"seconds": 0.1, "say": said}, tmp_path)
    assert code == 0  # run_worker_process parsed every stdout line as JSON: none was the stray text
    assert all(said not in json.dumps(event) for event in events)
    assert events[-1] == {"type": "result", "outputs": {"slept": 0.1}}
    assert stderr.count(said) == 2  # from print() and from os.write(1, ...)


def test_diagnostics_runs_in_the_worker_and_reports_its_libraries(tmp_path):
    code, events, _ = run_worker_process("diagnostics", {}, tmp_path)
    assert code == 0
    assert events[-1]["type"] == "result"
    assert events[-1]["outputs"]["worker"]["torch"].startswith("2.")


def test_a_failing_tool_reports_an_error_event_and_exit_status_1(tmp_path):
    code, events, _ = run_worker_process("sleep", {"seconds": "soon"}, tmp_path)
    assert code == 1
    assert events[-1]["type"] == "error"
    assert "could not convert string to float" in events[-1]["message"]
    assert "Traceback" in events[-1]["traceback"]


def test_bad_command_line_exits_2(tmp_path):
    process = subprocess.run([sys.executable, "-m", "engine.worker", "nonsense"], cwd=REPO, capture_output=True,
                             text=True)
    assert process.returncode == 2 and "usage" in process.stderr


def test_run_tool_in_process_keeps_events():
    reporter = Reporter()
    assert run_tool("sleep", {"seconds": 0.1}, reporter) == 0
    assert reporter.events[-1] == {"type": "result", "outputs": {"slept": 0.1}}
