#!/usr/bin/env bash
# The release package: dist/iamap-<version>.zip (one top folder iamap/ with what the plugin needs at run time,
# checked as the QGIS plugin repository would and scanned with bandit) and dist/plugins.xml, so that the dist
# folder serves as a custom plugin repository. The work is scripts/package.py's; this installs its tools first.
#
#   bash scripts/package.sh [--dist DIR] [--repository-url https://host/path/]   # default: dist/, its file:// address
#   bash scripts/package.sh --tools                                              # only print the tools' venv
set -euo pipefail
cd "$(dirname "$0")/.."

# the system Python (Debian: python3-venv) makes the venv; the tools never go into it or the worker environment
base_python=$(command -v /usr/bin/python3 || command -v python3)
# one venv per Python version: the same checkout may be packaged from a chroot with another system Python
tools="build/package-tools/$("$base_python" -c 'import sys; print("py%d.%d" % sys.version_info[:2])')"
pins=scripts/package_tools.txt
if ! cmp -s "$pins" "$tools/pins.txt" || ! "$tools/bin/python" -c "import qgispluginci, bandit" 2>/dev/null; then
  echo "== Installing the packaging tools (qgis-plugin-ci, bandit) into $tools"
  mkdir -p build/logs
  log=build/logs/package-tools-install.log
  rm -rf "$tools"
  if ! { "$base_python" -m venv "$tools" && "$tools/bin/python" -m pip install --disable-pip-version-check \
           --no-input -r "$pins"; } >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    echo "package: installing the packaging tools failed; the whole log: $log" >&2
    exit 1
  fi
  cp "$pins" "$tools/pins.txt"  # the stamp: the tools are reinstalled when the pins change
fi
if [[ "${1:-}" == "--tools" ]]; then
  echo "$PWD/$tools"
  exit 0
fi
exec "$tools/bin/python" scripts/package.py "$@"
