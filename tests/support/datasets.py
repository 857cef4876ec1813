"""Dataset files for the tests: a good DISC-MedLLM row, JSONL bytes, an upload through the API."""

from __future__ import annotations

import json
from typing import Any

import httpx

GOOD_ROW = {
    "conversation": [
        {"role": "user", "content": "头痛三天了"},
        {"role": "assistant", "content": "建议多休息，必要时就医。"},
    ]
}

# Too long for the tiny model's context (the jobs fail it at validation, with its line).
LONG_ROW = {
    "conversation": [
        {"role": "user", "content": "我最近总是头痛，晚上睡不好，白天没精神，请问怎么办？" * 4},
        {"role": "assistant", "content": "建议多休息。"},
    ]
}


def jsonl(*rows: Any) -> bytes:
    return b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in rows)


def upload(
    client: httpx.Client, data: bytes, name: str = "train.jsonl", purpose: str = "fine-tune"
) -> httpx.Response:
    return client.post("/v1/files", data={"purpose": purpose}, files={"file": (name, data)})
