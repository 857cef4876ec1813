"""Every chat completion is labelled AI-generated (the x-medchat-ai-generated header and an
`ai_generated` field), and an answer that names a prescription medicine with a dose carries the
prescription notice, as the official openai SDK sees them (extra fields are kept in
`model_extra`; headers through `with_raw_response` / `with_streaming_response`)."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from tests.support.engine_emulator import EmulatorHandle
from tests.support.platform import make_key

PRESCRIBING = ["可以口服", "阿莫西林", "0.5g，", "每日三次。"]


@pytest.fixture
def client(gateway_url: str, database_url: str) -> Iterator[openai.OpenAI]:
    key = make_key(database_url, "integrator")
    with openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=key, max_retries=0) as c:
        yield c


def test_the_sdk_sees_the_label_and_the_notice(
    client: openai.OpenAI, engine: EmulatorHandle
) -> None:
    engine.control(reply_tokens=PRESCRIBING)
    raw = client.chat.completions.with_raw_response.create(
        model="disc-medllm", messages=[{"role": "user", "content": "咳嗽有痰"}]
    )
    assert raw.headers["x-medchat-ai-generated"] == "true"
    completion = raw.parse()
    extra = completion.model_extra or {}
    assert extra["ai_generated"] is True
    assert extra["prescription"]["classes"] == ["antibiotic"]
    assert completion.choices[0].message.content == "".join(PRESCRIBING)

    with client.chat.completions.with_streaming_response.create(
        model="disc-medllm", messages=[{"role": "user", "content": "咳嗽"}], stream=True
    ) as response:
        assert response.headers["x-medchat-ai-generated"] == "true"
        chunks = list(response.parse())
    finishing = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert (finishing[-1].model_extra or {})["prescription"]["classes"] == ["antibiotic"]
    assert all((c.model_extra or {})["ai_generated"] is True for c in chunks)


def test_an_answer_without_a_prescription_is_labelled_and_has_no_notice(
    client: openai.OpenAI,
    engine: EmulatorHandle,  # back to its default reply, which names no medicine
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="disc-medllm", messages=[{"role": "user", "content": "头痛"}]
    )
    assert raw.headers["x-medchat-ai-generated"] == "true"
    extra = raw.parse().model_extra or {}
    assert extra["ai_generated"] is True and extra["prescription"] is None
