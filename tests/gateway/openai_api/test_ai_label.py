"""Every model answer is labelled AI-generated (the x-medchat-ai-generated header and a field),
and an answer that names a prescription medicine with a dose carries the prescription notice:
in the patient chat (JSON and stream) and through the official openai SDK."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import openai
import pytest

from tests.support.engine_emulator import EmulatorHandle
from tests.support.platform import Patient, make_key

PRESCRIBING = ["可以口服", "阿莫西林", "0.5g，", "每日三次。"]


@pytest.fixture
def client(gateway_url: str, database_url: str) -> Iterator[openai.OpenAI]:
    key = make_key(database_url, "integrator")
    with openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=key, max_retries=0) as c:
        yield c


def test_the_patient_chat_labels_answers_and_adds_the_prescription_notice(
    new_guest: Callable[[], Patient], engine: EmulatorHandle
) -> None:
    p = new_guest()
    sid = p.post("/api/sessions", json={}).json()["id"]
    calm = p.post(f"/api/sessions/{sid}/messages", json={"content": "头痛", "stream": False})
    assert calm.headers["x-medchat-ai-generated"] == "true"
    assert calm.json()["message"]["ai_generated"] is True and calm.json()["prescription"] is None
    engine.control(reply_tokens=PRESCRIBING)
    r = p.post(f"/api/sessions/{sid}/messages", json={"content": "咳嗽有痰", "stream": False})
    assert r.status_code == 200, r.text
    assert r.json()["prescription"]["classes"] == ["antibiotic"]
    with p.stream_answer(sid, "还要注意什么") as s:
        assert s.headers["x-medchat-ai-generated"] == "true"
        lines = [line for line in s.iter_lines() if line.startswith("data: ")]
    done = json.loads(lines[-1].removeprefix("data: "))
    assert done["prescription"]["matched"] == ["antibiotic.amount", "antibiotic.schedule_zh"]
    # Stored answers read back labelled; the patient's own words are not.
    messages = p.get(f"/api/sessions/{sid}").json()["messages"]
    assert [m["ai_generated"] for m in messages] == [False, True] * 3


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
