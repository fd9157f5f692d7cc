# Shared set-up steps of the README's commands (sourced, not run).
# ensure_qgis: QGIS 3.22+ with qgis_process and PyQGIS; on Debian/Ubuntu as root it is installed with apt.
# ensure_worker_env [--dev]: IAMAP's worker environment (fast no-op when up to date).
# ensure_xvfb: xvfb-run and xauth, for the tests that drive the QGIS desktop (the install dialog).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"

qgis_process_bin() {
  # Debian's /usr/bin/qgis_process wrapper passes an option 3.22 rejects; the .bin is the real program.
  if [ -x /usr/bin/qgis_process.bin ]; then echo /usr/bin/qgis_process.bin; else command -v qgis_process || true; fi
}

qgis_version() {  # "3.22.16-Białowieża", or "unknown"
  /usr/bin/python3 -c "from qgis.core import Qgis; print(Qgis.QGIS_VERSION)" 2>/dev/null || echo unknown
}

ensure_qgis() {
  if [ -n "$(qgis_process_bin)" ] && /usr/bin/python3 -c "import qgis.core" 2>/dev/null; then return; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== Installing QGIS with apt (about a minute)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      qgis python3-qgis qgis-providers python3-venv >/dev/null
  else
    echo "QGIS is missing. Install QGIS >= 3.22 with its Python bindings and qgis_process, e.g. on Debian/Ubuntu:" >&2
    echo "  sudo apt-get install --no-install-recommends qgis python3-qgis qgis-providers python3-venv" >&2
    echo "or see https://qgis.org/download/ for other systems." >&2
    exit 1
  fi
}

ensure_worker_env() {
  if ! /usr/bin/python3 -c "import venv, ensurepip" 2>/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    fi
  fi
  if [ -n "${IAMAP_PYTHON:-}" ]; then  # a Python the user chose: used as it is, never installed into
    (cd "$REPO" && /usr/bin/python3 -m engine.host.environment check >/dev/null) \
      || { (cd "$REPO" && /usr/bin/python3 -m engine.host.environment check) >&2; exit 1; }
    echo "== IAMAP worker environment: $IAMAP_PYTHON (IAMAP_PYTHON)"
    WORKER_PYTHON="$IAMAP_PYTHON"
    export WORKER_PYTHON
    return
  fi
  # The package index's PyTorch build, the one constraints.txt is resolved with and the only one reachable where
  # just the package index is; IAMAP_TORCH_BUILD=auto picks CPU-only or CUDA from the driver, as the dialog does.
  # pip's output goes to the log (IAMAP_INSTALL_LOG), the terminal gets one progress line.
  local log="${IAMAP_INSTALL_LOG:-$REPO/build/logs/environment-install.log}"
  (cd "$REPO" && quietly "IAMAP worker environment" "$log" \
    /usr/bin/python3 -m engine.host.environment install --torch-build "${IAMAP_TORCH_BUILD:-default}" "$@") || exit
  WORKER_PYTHON="$(cd "$REPO" && /usr/bin/python3 -m engine.host.environment python)" || exit
  export WORKER_PYTHON
}

# quietly LABEL LOG COMMAND...: runs COMMAND with all its output in LOG, and one line for it here: "== LABEL ...
# done in N s", with its progress while it runs when this is a terminal. When it fails: the end of LOG (the error)
# on stderr, and its exit status.
quietly() {
  local label="$1" log="$2" started=$SECONDS status=0
  shift 2
  mkdir -p "$(dirname "$log")"
  if [ -t 1 ]; then
    "$@" 2>&1 | tee "$log" | /usr/bin/python3 "$REPO/scripts/progress_line.py" "$label" || status=$?
    printf '\r\033[K'
  else
    printf '== %s ... ' "$label"
    "$@" >"$log" 2>&1 || status=$?
  fi
  if [ "$status" != 0 ]; then
    [ -t 1 ] && printf '== %s ... ' "$label"
    echo "FAILED (exit status $status)"
    { echo "The end of its log, $log:"; tail -n 30 "$log" | sed 's/^/  | /'; } >&2
    return "$status"
  fi
  [ -t 1 ] && printf '== %s ... ' "$label"
  echo "done in $((SECONDS - started)) s"
}

ensure_xvfb() {
  if command -v xvfb-run >/dev/null && command -v xauth >/dev/null; then return; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== Installing Xvfb with apt (the install dialog's tests run the QGIS desktop on it)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends xvfb xauth >/dev/null
  else
    echo "xvfb-run is missing: the QGIS desktop tests need it (e.g. sudo apt-get install xvfb xauth)." >&2
    exit 1
  fi
}
