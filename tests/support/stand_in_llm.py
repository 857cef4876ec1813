"""Stand-ins for the external GPT-class services (the patient simulator, the judge): a real
OpenAI-compatible HTTP server whose replies a test scripts, which records every request."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.support.servers import serve

# A reply: the assistant's text, or (HTTP status, JSON body) for a broken answer.
Reply = str | tuple[int, Any]
Script = Callable[[dict[str, Any], int], Reply]  # (request body, call number from 1) -> reply


@dataclass
class StandIn:
    url: str  # base URL with /v1
    model: str
    script: Script
    requests: list[dict[str, Any]] = field(default_factory=list)
    hold_from: int | None = None  # requests from this call number on wait (till cleared)

    @property
    def spec(self) -> str:
        return f"{self.url}/{self.model}"

    def texts(self) -> list[str]:
        """Every request's messages, joined: what a test searches for a case's question."""
        return ["\n".join(m["content"] for m in r["messages"]) for r in self.requests]


def _completion(text: str, model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-standin",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


@contextmanager
def stand_in(model: str, script: Script) -> Iterator[StandIn]:
    app = FastAPI()
    state = StandIn(url="", model=model, script=script)
    lock = threading.Lock()

    @app.post("/v1/chat/completions")
    async def complete(request: Request) -> Any:
        body = await request.json()
        with lock:
            state.requests.append(body)
            number = len(state.requests)
        deadline = time.monotonic() + 60
        while (
            state.hold_from is not None
            and number >= state.hold_from
            and time.monotonic() < deadline
        ):
            await asyncio.sleep(0.05)  # a service that stopped answering
        reply = state.script(body, number)
        if isinstance(reply, tuple):
            return JSONResponse(reply[1], status_code=reply[0])
        return _completion(reply, model)

    with serve(app) as url:
        state.url = f"{url}/v1"
        yield state
