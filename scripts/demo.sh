#!/usr/bin/env bash
# The main job: install, then start the whole platform with a tiny demo model that the
# platform's own trainer builds once (about two minutes on a CPU; cached under var/demo):
# embedded Postgres and Redis, the Celery worker, a `transformers serve` engine, the gateway
# and the web UI. It prints the web address, an admin login and key, and API examples.
# Ctrl-C stops everything. Arguments go to `medchat up` (e.g. --port 8080).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/medchat up --demo --demo-data ../shared/data/disc-medllm/sft_examples.jsonl "$@"
