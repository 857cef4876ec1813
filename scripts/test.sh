#!/usr/bin/env bash
# The test suite. Reads ../shared/data (the DISC-MedLLM examples) beside this checkout.
# Arguments go to pytest; the frontend's checks run only for a full run (no arguments).
set -euo pipefail
cd "$(dirname "$0")/.."
# The web UI's own checks first (the typed API client must match the gateway's OpenAPI; Vitest
# component tests), then everything else, end-to-end browser tests included.
if [ $# -eq 0 ]; then (cd frontend && npm run --silent check:api && npm test --silent); fi
exec .venv/bin/python -m pytest "$@"
