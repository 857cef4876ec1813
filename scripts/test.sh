#!/usr/bin/env bash
# The test suite. Reads ../shared/data (the DISC-MedLLM examples) beside this checkout.
# Arguments go to pytest; the frontend's checks run only for a full run (no arguments).
set -euo pipefail
cd "$(dirname "$0")/.."
# The web UI's own checks first (the typed API client must match the gateway's OpenAPI; Vitest
# component tests), then everything else, end-to-end browser tests included.
if [ $# -eq 0 ]; then (cd frontend && npm run --silent check:api && npm test --silent); fi
# A full run includes the real-vLLM tier (tests/engines): its own venv, made (once, ~2 min,
# 3.5 GB) by scripts/vllm_env.sh, and required: those tests fail rather than skip.
if [ $# -eq 0 ]; then
  bash scripts/vllm_env.sh
  export MEDCHAT_REQUIRE_VLLM=1
fi
exec .venv/bin/python -m pytest "$@"
