#!/usr/bin/env bash
# Create .venv and install DISC-MedChat with its development tools (no torch: the core and
# the gateway do not need it).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[dev]"
