#!/usr/bin/env bash
# Bootstrap a fresh Debian (bookworm) machine for ringio development and CI.
#
#   1. system packages: compilers, liburing, clang + sanitizer/libFuzzer runtimes, git, venv,
#      wrk (the HTTP load generator of nox -s bench)
#   2. ./.venv with the Python tooling: nox, pytest, meson, meson-python, ninja
#
# Idempotent: a second run checks, finds nothing to do and takes a second or two.
# Usage (from anywhere):  bash ci/bootstrap.sh
# Then:                   .venv/bin/nox -s tests
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

log() { printf 'bootstrap: %s\n' "$*"; }
die() { printf 'bootstrap: error: %s\n' "$*" >&2; exit 1; }

# --------------------------------------------------------------------------- system packages
APT_PACKAGES=(
  build-essential
  pkg-config
  liburing-dev
  clang
  libclang-rt-14-dev
  llvm
  python3-venv
  git
  wrk
  libaio1       # python-libaio, a peer of the files benchmark, loads libaio.so.1
)

PYTHON="${PYTHON:-python3}"

# Debian's own python3 keeps its C headers in python3-dev; an interpreter built from source
# (pyenv, deadsnakes, ...) ships them. The extension build needs Python.h either way.
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  APT_PACKAGES+=(python3-dev)   # python3 itself arrives with python3-venv
elif ! "$PYTHON" -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' 2>/dev/null; then
  APT_PACKAGES+=(python3-dev)
fi

is_installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = "installed" ]
}

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  is_installed "$pkg" || missing+=("$pkg")
done

if [ "${#missing[@]}" -eq 0 ]; then
  log "system packages: all ${#APT_PACKAGES[@]} present (${APT_PACKAGES[*]})"
else
  command -v apt-get >/dev/null 2>&1 || die "missing packages (${missing[*]}) and no apt-get: install them by hand"
  SUDO=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "not root and no sudo: cannot install ${missing[*]}"
    SUDO=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt_install() {
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -q --no-install-recommends "${missing[@]}"
  }
  # Refresh the package lists only when needed: when there are none (a fresh image),
  # or when an install from the present lists fails (stale lists give 404s).
  if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
    log "apt-get update (no package lists yet)"
    "${SUDO[@]}" apt-get update -q
  fi
  log "apt-get install ${missing[*]}"
  if ! apt_install; then
    log "install failed; apt-get update and retry"
    "${SUDO[@]}" apt-get update -q
    apt_install
  fi
  log "system packages: installed ${missing[*]}"
fi

# --------------------------------------------------------------------------- Python tooling
command -v "$PYTHON" >/dev/null 2>&1 || die "no $PYTHON on PATH"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || die "$PYTHON is $("$PYTHON" -c 'import sys; print(sys.version.split()[0])'); ringio needs >= 3.10"

# Lower bounds only. meson>=1.1 and meson-python>=0.15 match pyproject.toml;
# nox>=2024.3.2 for per-session reuse_venv and venv_backend.
PIP_REQUIREMENTS=(
  "nox>=2024.3.2"
  "pytest>=7.4"
  "meson>=1.1"
  "meson-python>=0.15"
  "ninja>=1.10"
)

VENV="$REPO_ROOT/.venv"
STAMP="$VENV/.ringio-bootstrap"
py_id="$("$PYTHON" -c 'import sys; print(sys.version.split()[0], sys.base_prefix)')"
want_stamp="$(printf '%s\n' "python: $py_id" "${PIP_REQUIREMENTS[@]}")"

if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
  log ".venv is broken (its interpreter no longer runs); recreating it"
  rm -rf "$VENV"
fi

if [ ! -x "$VENV/bin/python" ]; then
  log "creating .venv with $(command -v "$PYTHON") ($py_id)"
  "$PYTHON" -m venv "$VENV"
  rm -f "$STAMP"
fi

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want_stamp" ] \
   && [ -x "$VENV/bin/nox" ] && [ -x "$VENV/bin/meson" ] && [ -x "$VENV/bin/ninja" ] \
   && [ -x "$VENV/bin/pytest" ]; then
  log ".venv: up to date ($("$VENV/bin/nox" --version 2>&1 | tail -n1 | sed 's/^/nox /'), meson $("$VENV/bin/meson" --version))"
else
  log "pip install into .venv: ${PIP_REQUIREMENTS[*]}"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade "${PIP_REQUIREMENTS[@]}"
  printf '%s\n' "$want_stamp" > "$STAMP"
  log ".venv: ready ($("$VENV/bin/nox" --version 2>&1 | tail -n1 | sed 's/^/nox /'), meson $("$VENV/bin/meson" --version))"
fi

log "done. Run the tests with: .venv/bin/nox -s tests"
