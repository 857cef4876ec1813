"""`/v1/chat/completions` streamed: every event is what the OpenAPI documents
(`openai_api/schemas.py`), an engine failure included."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import orjson
import pytest
from pydantic import TypeAdapter

from services.gateway.openai_api.schemas import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionEvent,
    ModelList,
)
from tests.support.engine_emulator import EmulatorHandle
from tests.support.platform import make_key

EVENT = TypeAdapter(ChatCompletionEvent)


@pytest.fixture(scope="module")
def api(gateway_url: str, database_url: str) -> Iterator[httpx.Client]:
    key = make_key(database_url, "integrator")
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=gateway_url, headers=headers, timeout=30) as client:
        yield client


def events(api: httpx.Client, content: str) -> list[ChatCompletionEvent]:
    body = {
        "model": "disc-medllm",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": content}],
    }
    out = []
    with api.stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data: "):
                data = line[6:]
                out.append(
                    EVENT.validate_python(
                        {"data": data if data == "[DONE]" else orjson.loads(data)}
                    )
                )
    return out


def test_stream_events_match_the_models(api: httpx.Client, engine: EmulatorHandle) -> None:
    got = events(api, "my chest hurts and my left arm is numb")
    assert got[-1].data == "[DONE]"
    first = got[0].data
    assert isinstance(first, ChatCompletionChunk) and first.choices[0].delta.role == "assistant"
    engine.control(mode="generation_error")
    failed = events(api, "hi")
    assert any(hasattr(e.data, "error") for e in failed) and failed[-1].data == "[DONE]"


def test_notices_open_and_close_the_stream_not_every_token(
    api: httpx.Client, engine: EmulatorHandle
) -> None:
    """The disclaimer, the emergency notice and turns_used are on the first chunk and the
    closing ones (finish, usage); each token's chunk carries its text and the AI label."""
    chunks = [
        e.data
        for e in events(api, "my chest hurts and my left arm is numb")
        if isinstance(e.data, ChatCompletionChunk)
    ]
    first, *middle, finish, usage = chunks
    assert len(middle) >= 2 and all(c.choices[0].delta.content for c in middle)
    for c in (first, finish, usage):
        assert c.disclaimer and "不能替代" in c.disclaimer and c.turns_used == 1
        assert c.emergency is not None and c.emergency.severity == "critical"
    assert finish.choices[0].finish_reason and usage.usage is not None
    for c in middle:
        assert c.ai_generated is True
        assert c.disclaimer is None and c.emergency is None and c.turns_used is None
        assert {"disclaimer", "emergency", "turns_used"}.isdisjoint(c.model_fields_set)


def test_whole_answer_and_models_match_the_models(
    api: httpx.Client, engine: EmulatorHandle
) -> None:
    body = {"model": "disc-medllm", "messages": [{"role": "user", "content": "hi"}]}
    answer = ChatCompletion.model_validate(api.post("/v1/chat/completions", json=body).json())
    assert answer.choices[0].message.content
    listed = api.get("/v1/models").json()
    assert "parent" not in listed["data"][0]  # the engine's own model has no base
    assert ModelList.model_validate(listed).data[0].serving in (True, False)
