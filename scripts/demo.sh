#!/usr/bin/env bash
# The main job so far: build a tiny Baichuan-shaped tokenizer, validate the shipped
# DISC-MedLLM dialogues with token statistics, and show which tokens of one row train.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
data=../shared/data/disc-medllm/sft_examples.jsonl
.venv/bin/medchat dev-tokenizer var/tokenizer --from "$data"
.venv/bin/medchat validate "$data" --tokenizer var/tokenizer --max-seq-length 1200
head -n 1 "$data" > var/first-row.jsonl
.venv/bin/medchat render var/first-row.jsonl --tokenizer var/tokenizer
.venv/bin/medchat render var/first-row.jsonl --tokenizer var/tokenizer --prompt --budget 2048
