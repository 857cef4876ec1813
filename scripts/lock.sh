#!/usr/bin/env bash
# requirements.lock: every Python dependency of every extra (dev tools included), pinned,
# resolved by uv for CPython 3.11 on x86-64 Linux. Installs (scripts/install.sh, .ci/run,
# the Dockerfiles) take their versions from it, so every machine gets what the tests passed with.
#
#   bash scripts/lock.sh            re-resolve after editing pyproject.toml (keeps the other pins)
#   bash scripts/lock.sh --upgrade  move every dependency to its newest allowed release
#   bash scripts/lock.sh --check    fail when the lock no longer satisfies pyproject.toml (CI)
#
# torch is the exception: it is resolved (as the CPU build, so that its CUDA-only dependencies
# stay out) but not written to the lock; each install puts its own build of TORCH_VERSION
# first (the CPU wheel here, the CUDA wheel in the worker image).
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_VERSION=2.13.0
TORCH_WHEELS=${TORCH_WHEELS:-/opt/wheels}  # where the torch $TORCH_VERSION+cpu wheel lies
mode=${1:-}

uv=.venv/bin/uv
[ -x "$uv" ] || { python3 -m venv .venv && .venv/bin/python -m pip install --quiet uv; }

compile() {  # compile OUTPUT [uv options]: OUTPUT's own pins are kept unless --upgrade
  local out=$1; shift
  "$uv" pip compile pyproject.toml --all-extras --quiet \
    --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
    --find-links "$TORCH_WHEELS" -c <(echo "torch==$TORCH_VERSION+cpu") --no-emit-package torch \
    --custom-compile-command "bash scripts/lock.sh" -o "$out" "$@"
}

case "$mode" in
  --check)
    tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
    cp requirements.lock "$tmp/lock"
    compile "$tmp/lock"
    if ! diff -u requirements.lock "$tmp/lock"; then
      echo "requirements.lock is stale against pyproject.toml: run 'bash scripts/lock.sh' and commit both" >&2
      exit 1
    fi
    echo "requirements.lock matches pyproject.toml" ;;
  --upgrade) compile requirements.lock --upgrade ;;
  "") compile requirements.lock ;;
  *) echo "usage: bash scripts/lock.sh [--check|--upgrade]" >&2; exit 2 ;;
esac
