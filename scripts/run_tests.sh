#!/usr/bin/env bash
# Runs every test: installs QGIS and Xvfb (apt, as root) and the worker environment with pytest when missing,
# then runs pytest from the worker environment (engine tests in-process, QGIS tests through qgis_process
# and PyQGIS subprocesses), then the real-QGIS suite (tests/qgis) again on QGIS 3.40 LTR and 3.44, each in a
# Debian chroot with its own worker environment (scripts/qgis_chroot.sh; built once, reused after).
# Extra arguments go to every pytest run. IAMAP_TEST_QGIS_RELEASES="" runs this system's QGIS only.
source "$(dirname "$0")/common.sh"
ensure_qgis
ensure_xvfb
ensure_worker_env --dev
cd "$REPO"
releases="${IAMAP_TEST_QGIS_RELEASES-qgis-3.40 qgis-3.44}"
failed=""
started=$SECONDS
echo "== pytest (this system's QGIS: $(qgis_version))"
"$WORKER_PYTHON" -m pytest "$@" || failed="$failed this-system($?)"
echo "== this system's suite: $((SECONDS - started)) s"
for release in $releases; do
  started=$SECONDS
  bash scripts/qgis_chroot.sh test "$release" "$@" || failed="$failed $release($?)"
  echo "== $release suite, with its chroot and environment: $((SECONDS - started)) s"
done
if [ -n "$failed" ]; then
  echo "== failed:$failed" >&2
  exit 1
fi
