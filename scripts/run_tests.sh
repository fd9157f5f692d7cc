#!/usr/bin/env bash
# Runs every test: installs QGIS and Xvfb (apt, as root) and the worker environment with pytest when missing,
# then runs pytest from the worker environment (engine tests in-process, QGIS tests through qgis_process
# and PyQGIS subprocesses). Extra arguments go to pytest.
source "$(dirname "$0")/common.sh"
ensure_qgis
ensure_xvfb
ensure_worker_env --dev
cd "$REPO"
echo "== pytest"
exec "$WORKER_PYTHON" -m pytest "$@"
