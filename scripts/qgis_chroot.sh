#!/usr/bin/env bash
# QGIS releases other than this system's, each in a Debian chroot built with Debian's own tools, for the tests.
#
#   bash scripts/qgis_chroot.sh ensure NAME          build the chroot once (a stamp makes a second call instant)
#   bash scripts/qgis_chroot.sh run NAME CMD...      run CMD inside it, in this checkout (same path), as root
#   bash scripts/qgis_chroot.sh test NAME [PYTEST]   its own worker environment (the plugin's installer, the
#                                                    chroot's Python), then the real-QGIS suite (tests/qgis, or
#                                                    the tests/... files given)
#
# NAME is one of the releases below. The chroots live in $IAMAP_CHROOTS (default /var/cache/iamap-qgis), a few
# GB each plus the worker environment inside. Commands run under `env -i` so that nothing of this machine's
# Python or pip set-up leaks in; this machine's CA certificates are copied in so that pip there reaches the
# package index as it does here. Needs root, debootstrap and the network to Debian's mirror and the package index.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHROOTS="${IAMAP_CHROOTS:-/var/cache/iamap-qgis}"

# NAME -> Debian suite whose QGIS it has (trixie: 3.40 LTR with Python 3.13; sid: the newest, 3.44 when written).
declare -A SUITE=([qgis-3.40]=trixie [qgis-3.44]=sid)
# What the chroot needs: QGIS with PyQGIS and qgis_process, venv/pip for the worker environment, ps (procps) for
# the tests that look at processes, Xvfb for the desktop tests, fonts so the desktop draws text (Open Sans, which
# 3.40 otherwise tries to download at start-up, saying so in the message bar), git for the release package
# (scripts/package.sh takes the tracked files).
PACKAGES="qgis python3-qgis qgis-providers python3-venv python3-pip ca-certificates procps xvfb xauth fonts-dejavu-core fonts-open-sans git"

die() { echo "qgis_chroot: $*" >&2; exit 1; }

root_of() {
  [ -n "${SUITE[$1]:-}" ] || die "unknown release '$1' (known: ${!SUITE[*]})"
  echo "$CHROOTS/$1"
}

# The stamp records what the chroot was built from; a different package list or suite builds it again.
stamp_text() { printf 'suite=%s\npackages=%s\n' "${SUITE[$1]}" "$PACKAGES"; }

mount_all() {  # bind the kernel's file systems, this checkout and the shared data at the same paths
  local dir="$1" path
  for path in /proc /sys /dev /dev/pts "$REPO"; do
    mkdir -p "$dir$path"
    mountpoint -q "$dir$path" || mount --bind "$path" "$dir$path"
  done
  if [ -d "$REPO/../shared" ]; then
    path="$(cd "$REPO/../shared" && pwd)"
    mkdir -p "$dir$path"
    mountpoint -q "$dir$path" || { mount --bind "$path" "$dir$path" && mount -o remount,bind,ro "$dir$path"; }
  fi
  mkdir -p "$dir/dev/shm" "$dir/tmp"
  chmod 1777 "$dir/tmp"
}

unmount_all() {
  local dir="$1" path
  # Deepest first; a lazy unmount so that a process the tests left behind cannot keep the chroot mounted.
  for path in $(awk -v d="$dir" '$2 == d || index($2, d "/") == 1 {print $2}' /proc/mounts | sort -r); do
    umount -l "$path" 2>/dev/null || true
  done
}

in_chroot() {  # in_chroot DIR CMD...: CMD as root in DIR with a clean environment, from this checkout
  local dir="$1"
  shift
  env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    TERM="${TERM:-dumb}" CI="${CI:-}" DEBIAN_FRONTEND=noninteractive \
    chroot "$dir" /bin/bash -c 'cd "$0" && exec "$@"' "$REPO" "$@"
}

ensure() {
  local name="$1" dir stamp
  dir="$(root_of "$name")"
  stamp="$dir/.iamap-stamp"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(stamp_text "$name")" ]; then return; fi
  [ "$(id -u)" = 0 ] || die "building the $name chroot needs root"
  command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; }
  echo "== Building the $name chroot (Debian ${SUITE[$name]}) in $dir"
  unmount_all "$dir"
  # The base system is kept when only the packages changed, or when an earlier build stopped after it.
  if [ "$(cat "$dir/.iamap-base" 2>/dev/null)" != "${SUITE[$name]}" ]; then
    rm -rf "$dir"
    mkdir -p "$CHROOTS"
    debootstrap --variant=minbase "${SUITE[$name]}" "$dir" >"$CHROOTS/$name-debootstrap.log" 2>&1 \
      || { tail -n 20 "$CHROOTS/$name-debootstrap.log" >&2; die "debootstrap failed"; }
    echo "${SUITE[$name]}" >"$dir/.iamap-base"
  fi
  cp /etc/resolv.conf "$dir/etc/resolv.conf"
  # sid's Release file is valid for a week only: a mirror that is a snapshot of Debian serves one that has
  # expired, which apt refuses. The packages are still checked against the archive's signature.
  echo 'Acquire::Check-Valid-Until "false";' >"$dir/etc/apt/apt.conf.d/99iamap-valid-until"
  if [ -d /usr/local/share/ca-certificates ]; then
    mkdir -p "$dir/usr/local/share/ca-certificates"
    cp -r /usr/local/share/ca-certificates/. "$dir/usr/local/share/ca-certificates/"
  fi
  mount_all "$dir"
  trap 'unmount_all "'"$dir"'"' EXIT
  in_chroot "$dir" apt-get update -qq || die "apt-get update failed in the $name chroot"
  # shellcheck disable=SC2086
  in_chroot "$dir" apt-get install -y -qq --no-install-recommends $PACKAGES >"$CHROOTS/$name-apt.log" 2>&1 \
    || { tail -n 20 "$CHROOTS/$name-apt.log" >&2; die "apt-get install failed in the $name chroot"; }
  in_chroot "$dir" update-ca-certificates >/dev/null
  unmount_all "$dir"
  trap - EXIT
  stamp_text "$name" >"$stamp"
  echo "== $name chroot ready: $(in_chroot_version "$dir")"
}

in_chroot_version() {
  chroot "$1" dpkg-query -W -f='QGIS ${Version}' qgis 2>/dev/null || echo "QGIS ?"
}

run() {
  local name="$1" dir status=0
  shift
  dir="$(root_of "$name")"
  [ -f "$dir/.iamap-stamp" ] || die "the $name chroot is not built: bash scripts/qgis_chroot.sh ensure $name"
  mount_all "$dir"
  trap 'unmount_all "'"$dir"'"' EXIT
  in_chroot "$dir" "$@" || status=$?
  unmount_all "$dir"
  trap - EXIT
  return "$status"
}

test_suite() {  # the worker environment made by the plugin's own installer from the chroot's Python, then pytest
  local name="$1"
  shift
  ensure "$name"
  echo "== QGIS suite on $name ($(in_chroot_version "$(root_of "$name")"))"
  run "$name" bash -c 'source scripts/common.sh
    IAMAP_INSTALL_LOG="build/logs/environment-install-$0.log" ensure_worker_env --dev
    paths=tests/qgis
    for argument in "$@"; do case "$argument" in tests/*) paths="" ;; esac; done  # the test files given instead
    exec "$WORKER_PYTHON" -m pytest $paths "$@"' "$name" "$@"
}

command="${1:-}"
shift || true
case "$command" in
  ensure) ensure "$@" ;;
  run) run "$@" ;;
  test) test_suite "$@" ;;
  *) die "usage: qgis_chroot.sh ensure|run|test NAME ..." ;;
esac
