"""A Dask cluster for the SCHEDULER tests, as users run one: workers that have the engine only as the
pip-installed package ``iamap.engine`` (a wheel of the plugin folder installed into a folder of its own), never
the plugin folder, while the client (the test process, or QGIS's worker) runs the engine as ``engine``.

:func:`local_cluster` starts a ``LocalCluster`` of worker processes in a Python of its own (PYTHONPATH = the
installed engine, working folder outside the repository) and yields its address and that process.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CLUSTER_SCRIPT = textwrap.dedent("""
    import sys
    from distributed import LocalCluster

    if __name__ == "__main__":
        workers = int(sys.argv[1])
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                               scheduler_port=0, silence_logs=40)
        print("ADDRESS", cluster.scheduler_address, flush=True)
        sys.stdin.read()  # until the test closes it
        cluster.close()
""")


def install_engine(root: Path) -> Path:
    """The plugin folder built as a wheel and installed without dependencies (they are this Python's) into
    ``root/site``; returns that folder."""
    root.mkdir(parents=True, exist_ok=True)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                            str(root / "wheel"), str(REPO)], capture_output=True, text=True, cwd=root)
    assert build.returncode == 0, build.stderr
    wheel = next((root / "wheel").glob("iamap_engine-*.whl"))
    assert "iamap/engine/scale_out_worker.py" in zipfile.ZipFile(wheel).namelist()
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                              str(root / "site"), str(wheel)], capture_output=True, text=True, cwd=root)
    assert install.returncode == 0, install.stderr
    return root / "site"


@contextlib.contextmanager
def local_cluster(root: Path, site: Path | None, workers: int = 2):
    """Yield (scheduler address, the process running the cluster). ``site``: the installed engine on the
    workers' path; None: workers without the engine."""
    root.mkdir(parents=True, exist_ok=True)
    script = root / "cluster.py"
    script.write_text(CLUSTER_SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    if site is not None:
        env["PYTHONPATH"] = str(site)
    process = subprocess.Popen([sys.executable, str(script), str(workers)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, cwd=root, env=env)
    try:
        line = process.stdout.readline()
        assert line.startswith("ADDRESS "), f"the cluster did not start: {line!r}"
        yield line.split()[1], process
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def worker_pids(address: str) -> dict[str, int]:
    """Worker address -> process id."""
    from distributed import Client

    with Client(address, timeout=10, set_as_default=False) as client:
        return client.run(os.getpid)
