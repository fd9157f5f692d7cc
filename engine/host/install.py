"""Building the worker environment from an :class:`~engine.host.install_plan.InstallPlan`: the staged install, the
self-test, the swap, and the ``install``/``plan``/``self-test`` commands.

Standard library only; run on the host by ``python3 -m engine.host.environment install`` (the install dialog runs
that same command in the background and reads its ``--events``). The new environment is built in a sibling
folder (``worker-env.staging``) and replaces the current one only after its self-test passed, so an install
that fails or is cancelled (the dialog kills the command's whole process group) leaves the previous environment
as it was. A swap cut short is completed or undone by :func:`recover_interrupted_swap` at the next install.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ..errors import EnvironmentProblem
from ..events import NULL_REPORTER, Reporter
from .status import (MARKER_NAME, PLUGIN_DIR, check_environment, env_python, fingerprint, requirement_files,
                     worker_process_environment)
from .install_plan import PREVIOUS_SUFFIX, STAGING_SUFFIX, InstallPlan, Step, make_plan

#: pip lines worth showing when a step fails (the rest of its output is in the log).
ERROR_MARKERS = ("ERROR", "error:", "Error:", "No matching distribution", "Could not", "Failed to establish")


def is_up_to_date(env_dir: Path, dev: bool) -> bool:
    """Whether the environment in ``env_dir`` was built from today's requirement files."""
    try:
        record = json.loads((env_dir / MARKER_NAME).read_text())
    except (OSError, ValueError):
        return False
    # an environment with the test requirements serves plain use too
    return env_python(env_dir).exists() and record.get("fingerprint") in (fingerprint(dev), fingerprint(True))


def recover_interrupted_swap(env_dir: Path) -> None:
    """Finish or undo a swap that was killed between its two renames; drop a left-over staging folder."""
    previous = env_dir.with_name(env_dir.name + PREVIOUS_SUFFIX)
    if previous.exists() and not env_dir.exists():
        os.replace(previous, env_dir)
    shutil.rmtree(previous, ignore_errors=True)
    shutil.rmtree(env_dir.with_name(env_dir.name + STAGING_SUFFIX), ignore_errors=True)


def install(plan: InstallPlan, reporter: Reporter = NULL_REPORTER, force: bool = False) -> dict:
    """Build the environment of ``plan``, self-test it, then put it in place; return what the ``result`` event
    carries (python, folder, build, self-test). Does nothing but say so when it is up to date (unless ``force``).

    Raises
    ------
    EnvironmentProblem
        A step or the self-test failed; the previous environment, if any, is untouched. ``self_test`` holds the
        checks when the self-test ran.
    """
    env_dir = plan.env_dir
    recover_interrupted_swap(env_dir)
    if not force and is_up_to_date(env_dir, plan.dev):
        reporter.text(f"IAMAP environment is up to date: {env_dir}")
        return {"python": str(env_python(env_dir)), "env_dir": str(env_dir), "up_to_date": True, "self_test": []}
    started = time.monotonic()
    env_dir.parent.mkdir(parents=True, exist_ok=True)
    for step in plan.steps():
        reporter.text(f"== {step.label}")
        _run(step, reporter)
    reporter.text("== Self-test of the new environment")
    checks = run_self_test(env_python(plan.staging_dir), plan.requirements, plan.self_test_device(), reporter)
    failed = [check for check in checks if not check["ok"]]
    if failed:
        shutil.rmtree(plan.staging_dir, ignore_errors=True)
        problem = EnvironmentProblem("The new environment failed its self-test, so it was not put in place: " +
                                     "; ".join(f"{c['check']}: {c['detail']}" for c in failed))
        problem.self_test = checks
        raise problem
    (plan.staging_dir / MARKER_NAME).write_text(json.dumps({
        "fingerprint": fingerprint(plan.dev), "dev": plan.dev, "installed": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "python": str(env_python(env_dir)), "torch_build": plan.choice.build.name, "self_test": checks}))
    swap_in(plan.staging_dir, env_dir)
    reporter.progress(100, force=True)
    reporter.text(f"IAMAP environment ready in {time.monotonic() - started:.0f} s: {env_python(env_dir)}")
    return {"python": str(env_python(env_dir)), "env_dir": str(env_dir), "torch_build": plan.choice.build.name,
            "self_test": checks}


def swap_in(staging: Path, env_dir: Path) -> None:
    """Put the staged environment in place of ``env_dir`` (kept aside until the new one is there)."""
    previous = env_dir.with_name(env_dir.name + PREVIOUS_SUFFIX)
    shutil.rmtree(previous, ignore_errors=True)
    if env_dir.exists():
        try:
            os.replace(env_dir, previous)
        except OSError as exc:  # Windows: a worker still runs from it
            shutil.rmtree(staging, ignore_errors=True)
            raise EnvironmentProblem(f"Cannot replace {env_dir} ({exc.strerror}): close QGIS tools still running "
                                     "IAMAP, then install again.") from exc
    os.replace(staging, env_dir)
    _relink_scripts(env_dir, staging)
    shutil.rmtree(previous, ignore_errors=True)


def _relink_scripts(env_dir: Path, staging: Path) -> None:
    """Point the venv's scripts (shebangs, activate) at the final folder. Not needed by IAMAP, which always runs
    ``python -m``, but a user's ``worker-env/bin/pip`` should work. Windows' .exe launchers are left as they are."""
    old, new = str(staging).encode(), str(env_dir).encode()
    for path in [env_dir / "pyvenv.cfg", *(env_dir / "bin").glob("*")]:
        if path.is_file() and not path.is_symlink() and path.stat().st_size < 1_000_000:
            content = path.read_bytes()
            if old in content:
                path.write_bytes(content.replace(old, new))


def pip_environment() -> dict:
    """The environment of the install's commands: QGIS's Python and GDAL variables removed, no prompts."""
    env = worker_process_environment()
    del env["PYTHONPATH"]  # the plugin folder is not for pip (its build back-ends could import from it)
    env.update(PIP_NO_INPUT="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


def _no_console() -> dict:
    return {"creationflags": 0x08000000} if sys.platform == "win32" else {}  # CREATE_NO_WINDOW under QGIS


def _run(step: Step, reporter: Reporter) -> None:
    progress = reporter.stage(step.start, step.end)
    progress.progress(0, force=True)
    try:
        process = subprocess.Popen(step.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, text=True, encoding="utf-8", errors="replace",
                                   env=pip_environment(), **_no_console())
    except OSError as exc:
        raise EnvironmentProblem(f"{step.label} failed: cannot start {step.command[0]}: {exc}") from exc
    collected, relevant = 0, []
    assert process.stdout is not None
    for line in process.stdout:
        line = line.rstrip()
        reporter.text(line)
        if any(marker in line for marker in ERROR_MARKERS):
            relevant.append(line.strip())
        if line.startswith("Collecting ") and step.expected_packages:
            collected += 1
            progress.progress(90 * min(1.0, collected / step.expected_packages))
        elif line.startswith("Installing collected packages"):
            progress.progress(92)
    if process.wait() != 0:
        hint = ""
        if "PyTorch" in step.label:
            hint = (" If PyTorch's wheel index cannot be reached from here, choose the package index's default build "
                    "(--torch-build default, or that entry in the install dialog).")
        elif "venv" in step.command:
            hint = " On Debian/Ubuntu install the python3-venv package first."
        shown = "\n".join(relevant[-8:])
        raise EnvironmentProblem(f"{step.label} failed (exit status {process.returncode}).{hint}"
                                 + (f"\n{shown}" if shown else ""))
    progress.progress(100, force=True)


def run_self_test(python: Path, requirements: Path, device: str, reporter: Reporter = NULL_REPORTER) -> list[dict]:
    """Run :mod:`engine.host.self_test` with ``python``; return its checks (a crash is a failed check)."""
    command = [str(python), "-m", "engine.host.self_test", "--requirements", str(requirements), "--device", device]
    result = subprocess.run(command, cwd=str(PLUGIN_DIR), env=worker_process_environment(), capture_output=True,
                            text=True, encoding="utf-8", errors="replace", stdin=subprocess.DEVNULL, timeout=600,
                            **_no_console())
    checks = []
    for line in result.stdout.splitlines():
        try:
            checks.append(json.loads(line))
        except ValueError:
            continue
    if result.returncode != 0 and all(check["ok"] for check in checks):
        tail = " | ".join(result.stderr.strip().splitlines()[-5:])
        checks.append({"check": "self-test", "ok": False, "detail": f"stopped with exit status {result.returncode}: "
                                                                    f"{tail}"})
    for check in checks:
        reporter.text(f"Self-test {'passed' if check['ok'] else 'FAILED'}: {check['check']}: {check['detail']}")
    return checks


class ConsoleReporter(Reporter):
    """The command line's reporter for a person: text as lines, progress every 10 %, the error on stderr."""

    def emit(self, event: dict) -> None:
        kind, message = event["type"], event.get("message", "")
        if kind == "progress":
            tenth = int(event["percent"] // 10)
            if tenth > getattr(self, "_printed_tenth", -1):
                self._printed_tenth = tenth
                print(f"[{10 * tenth:3d} %]", flush=True)
        elif kind in ("text", "warning"):
            print(message if kind == "text" else f"warning: {message}", flush=True)
        elif kind == "error":
            print(f"error: {message}", file=sys.stderr, flush=True)


def main(args) -> int:
    """``install``, ``plan`` and ``self-test`` of ``python3 -m engine.host.environment`` (parsed there)."""
    events = getattr(args, "events", False)
    reporter = Reporter(sys.stdout) if events else ConsoleReporter()
    try:
        if args.command == "self-test":
            return _self_test_installed(reporter)
        plan = make_plan(args.dir, args.torch_build, args.dev)
        for line in plan.describe():
            reporter.text(line)
        if args.command == "plan":
            return 0
        outputs = install(plan, reporter, force=args.force)
        reporter.result(outputs)
        if not events:
            print(outputs["python"])
    except EnvironmentProblem as exc:
        # the error event with the self-test's checks, which the install dialog lists
        reporter.emit({"type": "error", "message": str(exc), "traceback": "", "internal": False,
                       "self_test": getattr(exc, "self_test", [])})
        return 1
    except KeyboardInterrupt:
        reporter.error("Install interrupted; the previous environment, if any, is unchanged.")
        return 130
    return 0


def _self_test_installed(reporter: Reporter) -> int:
    status = check_environment()
    if not status.complete:
        raise EnvironmentProblem(status.problem)
    try:
        build = json.loads((status.python.parent.parent / MARKER_NAME).read_text()).get("torch_build", "default")
    except (OSError, ValueError):
        build = "default"
    device = {"cpu": "cpu", "default": "auto"}.get(build, "cuda")
    checks = run_self_test(status.python, requirement_files()[0], device, reporter)
    return 0 if all(check["ok"] for check in checks) else 1
