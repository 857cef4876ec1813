#!/usr/bin/env bash
# The test suite. Reads ../shared/data (the DISC-MedLLM examples) beside this checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m pytest "$@"
