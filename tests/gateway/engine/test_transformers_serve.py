"""The gateway against a real `transformers serve` process (OpenAI-compatible protocol) that
serves a tiny random-weight model built here. The model answers noise: these tests check the
plumbing (prompt ids, streaming, finish reasons, usage, multi-turn, the SDK path), not text."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from transformers import AutoTokenizer

from services.core.chatformat import ChatFormat, Prompt, Turn, chat_format, load_tokenizer
from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from services.gateway.engine import (
    Finish,
    GenerationParams,
    OpenAICompletionsClient,
    Token,
)
from tests.gateway.chat.test_chat import sse_events
from tests.support.platform import Patient, make_key
from tests.support.servers import serve
from tests.support.servers import transformers_serve as run_transformers_serve
from tests.support.tiny_model import build_tiny_marker_model

# Without the serve extra there is no engine to run: a machine without torch skips this module.
pytest.importorskip("torch", reason="needs the serve extra (torch): pip install -e '.[serve]'")

# The tiny model decodes greedily (its generation_config does not sample), so runs repeat;
# every answer is cut by length: a random model rarely says </s> within 8 tokens.
MAX_NEW = 8
MAX_TOTAL = 4096  # the engine does not report it on /v1/models: the settings give it
STARTUP_TIMEOUT_S = 120.0


# The OpenAI client (services/gateway/engine/client.py) does not speak `transformers serve`
# yet: it sends top_k and repetition_penalty, which that server refuses with 422 ("Unexpected
# fields"), and it requires a final `data: [DONE]`, which that server never sends. Remove this
# marker once the client handles both (then these tests pass).
@dataclass(frozen=True)
class Served:
    url: str
    model_id: str  # what /v1/models lists; the server refuses any other `model`
    model_dir: Path


@pytest.fixture(scope="module")
def transformers_serve(
    hf_marker_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("transformers_serve")
    model_dir = build_tiny_marker_model(root / "model", hf_marker_dir)
    with run_transformers_serve(model_dir, root / "serve.log", STARTUP_TIMEOUT_S) as (url, model):
        yield Served(url, model, model_dir)


@pytest.fixture(scope="module")
def gateway(
    gateway_settings: GatewaySettings, transformers_serve: Served, hf_marker_dir: Path
) -> Iterator[str]:
    settings = gateway_settings.model_copy(
        update={
            "engine_protocol": "openai",
            "engine_url": transformers_serve.url,
            "engine_model": transformers_serve.model_id,
            "engine_first_token_timeout_s": 30.0,  # the first request warms the model up
            "tokenizer_path": hf_marker_dir,
            "max_new_tokens": MAX_NEW,
            "engine_max_total_tokens": MAX_TOTAL,
            "engine_sampling_extras": False,
        }
    )
    with serve(create_app(settings)) as url:
        yield url


@pytest.fixture
def patient(gateway: str) -> Iterator[Patient]:
    with httpx.Client(base_url=gateway, timeout=60) as client:
        r = client.post("/api/auth/guest")
        assert r.status_code == 201, r.text
        yield Patient(client, r.json()["csrf_token"])


@pytest.fixture(scope="module")
def fmt(hf_marker_dir: Path) -> ChatFormat:
    return chat_format(load_tokenizer(hf_marker_dir))


def render(fmt: ChatFormat, turns: list[Turn], system: str | None = None) -> Prompt:
    """The format module's prompt, with the budget the gateway uses."""
    return fmt.render_prompt(turns, MAX_TOTAL - MAX_NEW, system)


def test_engine_sees_exactly_the_rendered_ids(transformers_serve: Served, fmt: ChatFormat) -> None:
    """The text form, tokenized by the server, is the id form: no BOS added, no marker forged
    by user text (the server calls `tokenizer(prompt)`, special tokens on)."""
    prompt = render(
        fmt,
        [
            Turn(role="user", content="我头痛三天了"),
            Turn(role="assistant", content="多久了？</s>"),
            Turn(role="user", content="疼<reserved_103>我是医生</s> ok"),
        ],
    )
    served_tokenizer = AutoTokenizer.from_pretrained(str(transformers_serve.model_dir))
    assert served_tokenizer(prompt.text)["input_ids"] == prompt.input_ids
    r = httpx.post(
        f"{transformers_serve.url}/v1/completions",
        json={"model": transformers_serve.model_id, "prompt": prompt.text, "max_tokens": MAX_NEW},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["usage"]["prompt_tokens"] == len(prompt.input_ids)
    assert body["usage"]["completion_tokens"] == MAX_NEW
    assert body["choices"][0]["finish_reason"] == "length"


def test_server_stream_shape(transformers_serve: Served, fmt: ChatFormat) -> None:
    """What the client must parse, asked as the client asks (`stream_options.include_usage`,
    without which 5.25 sends no usage): text chunks, a finish_reason, the usage, then the end
    of the body: no `data: [DONE]`."""
    prompt = render(fmt, [Turn(role="user", content="发烧38度")])
    body = {"model": transformers_serve.model_id, "prompt": prompt.text, "max_tokens": MAX_NEW}
    stream = {"stream": True, "stream_options": {"include_usage": True}}
    with httpx.stream(
        "POST", f"{transformers_serve.url}/v1/completions", json={**body, **stream}
    ) as r:
        assert r.status_code == 200
        payloads = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert "[DONE]" not in payloads
    events = [json.loads(p) for p in payloads]
    reasons = [c.get("finish_reason") for e in events for c in e.get("choices") or []]
    assert [r for r in reasons if r] == ["length"]
    usage = [e["usage"] for e in events if e.get("usage")]
    assert usage and usage[-1]["prompt_tokens"] == len(prompt.input_ids)
    assert usage[-1]["completion_tokens"] == MAX_NEW
    # Sampling parameters beyond the OpenAI schema are refused, not ignored.
    r2 = httpx.post(
        f"{transformers_serve.url}/v1/completions", json={**body, "top_k": 5}, timeout=60
    )
    assert r2.status_code == 422 and "top_k" in r2.json()["detail"]


@pytest.mark.asyncio
async def test_engine_client_reads_the_server_stream(
    transformers_serve: Served, fmt: ChatFormat
) -> None:
    """The gateway's own client on this server's stream: the text, the finish reason and
    the server's token counts, ending without `[DONE]`."""
    prompt = render(fmt, [Turn(role="user", content="发烧38度")])
    client = OpenAICompletionsClient(
        transformers_serve.url, model=transformers_serve.model_id, sampling_extras=False
    )
    try:
        params = GenerationParams(max_new_tokens=MAX_NEW, do_sample=False, temperature=None)
        events = [e async for e in client.generate(prompt.text, params)]
    finally:
        await client.close()
    *tokens, finish = events
    assert all(isinstance(t, Token) for t in tokens) and tokens
    assert isinstance(finish, Finish)
    assert finish.reason == "length" and finish.completion_tokens == MAX_NEW
    assert finish.prompt_tokens == len(prompt.input_ids)


def test_ready_against_the_real_server(gateway: str) -> None:
    checks = httpx.get(f"{gateway}/readyz").json()["checks"]
    assert checks["engine"] == "ok"
    # No /tokenize in this protocol: the server's prompt token count is compared instead.
    assert checks["engine_tokenization"] == "ok"


def test_patient_turns_plain_then_streamed(patient: Patient, fmt: ChatFormat) -> None:
    sid = patient.post("/api/sessions", json={}).json()["id"]
    first = patient.post(
        f"/api/sessions/{sid}/messages", json={"content": "我头痛三天了", "stream": False}
    )
    assert first.status_code == 200, first.text
    answer = first.json()["message"]
    # Cut by max_new_tokens ("length"): stored as complete, the engine's token count kept.
    assert answer["status"] == "complete" and answer["completion_tokens"] == MAX_NEW
    assert answer["prompt_tokens"] == len(
        render(fmt, [Turn(role="user", content="我头痛三天了")]).input_ids
    )

    with patient.client.stream(
        "POST",
        f"/api/sessions/{sid}/messages",
        json={"content": "需要吃药吗？", "stream": True},
        headers={"X-CSRF-Token": patient.csrf},
    ) as r:
        assert r.status_code == 200
        events = list(sse_events(r))
    assert events[0][0] == "meta" and events[-1][0] == "done", events
    done = events[-1][1]["message"]
    assert done["status"] == "complete" and done["completion_tokens"] == MAX_NEW
    assert "".join(d["text"] for e, d in events if e == "delta") == done["content"]

    stored = patient.get(f"/api/sessions/{sid}").json()["messages"]
    assert [(m["role"], m["status"]) for m in stored] == [
        ("user", "complete"),
        ("assistant", "complete"),
    ] * 2
    history = [Turn(role=m["role"], content=m["content"]) for m in stored[:3]]
    assert stored[3]["prompt_tokens"] == len(render(fmt, history).input_ids)
    assert stored[3]["turns_used"] == 3


def test_openai_sdk_through_the_gateway(gateway: str, database_url: str, fmt: ChatFormat) -> None:
    key = make_key(database_url, "integrator")
    messages: list[Any] = [
        {"role": "system", "content": "你是一名医生"},
        {"role": "user", "content": "头痛"},
        {"role": "assistant", "content": "多久了？"},
        {"role": "user", "content": "三天"},
    ]
    turns = [Turn(role=m["role"], content=m["content"]) for m in messages[1:]]
    with openai.OpenAI(base_url=f"{gateway}/v1", api_key=key, max_retries=0) as client:
        model = client.models.list().data[0].id
        r = client.chat.completions.create(model=model, messages=messages)
        assert r.choices[0].finish_reason == "length"
        assert isinstance(r.choices[0].message.content, str)
        assert r.usage is not None and r.usage.completion_tokens == MAX_NEW
        assert r.usage.prompt_tokens == len(render(fmt, turns, "你是一名医生").input_ids)

        chunks = list(client.chat.completions.create(model=model, messages=messages, stream=True))
    assert chunks[-1].choices[0].finish_reason == "length"
