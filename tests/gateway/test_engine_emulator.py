"""The engine emulator, over real HTTP, against TGI's own OpenAPI schema.

The gateway's tests trust this emulator to behave like TGI (and like an OpenAI-compatible
server): every body here is validated against `tgi-openapi-3.3.6.json`, and every failure
mode is checked for the status codes and SSE shapes the gateway must handle.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from services.core.chatformat import Tokenizer, load_tokenizer
from tests.support.engine_emulator import (
    DEFAULT_REPLY,
    EmulatorError,
    EmulatorHandle,
    run_emulator,
    tgi_schema_validator,
)

PROMPT = "<s><reserved_102>头痛三天，伴有低烧<reserved_103>"
REPLY_TEXT = "".join(DEFAULT_REPLY)
MAX_INPUT_TOKENS = 64
MAX_TOTAL_TOKENS = 96
MODEL_ID = "disc-medllm-test"


@pytest.fixture(scope="module")
def emulator(sp_dir: Path) -> Iterator[EmulatorHandle]:
    with run_emulator(
        sp_dir,
        max_input_tokens=MAX_INPUT_TOKENS,
        max_total_tokens=MAX_TOTAL_TOKENS,
        model_id=MODEL_ID,
    ) as handle:
        yield handle


@pytest.fixture(scope="module")
def client(emulator: EmulatorHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.url, timeout=5.0) as c:
        yield c


@pytest.fixture(scope="module")
def tok(sp_dir: Path) -> Tokenizer:
    return load_tokenizer(sp_dir)


@pytest.fixture(autouse=True)
def fresh_state(emulator: EmulatorHandle) -> None:
    # The process outlives each test: restore the script, not only the records.
    emulator.control(
        reset=True,
        mode="ok",
        reply_tokens=list(DEFAULT_REPLY),
        first_token_delay=0.0,
        token_delay=0.005,
    )


@cache
def _validator(name: str, strict: bool) -> jsonschema.Draft202012Validator:
    return tgi_schema_validator(name, strict=strict)


def check(name: str, instance: Any, *, strict: bool = True) -> None:
    """Validate against TGI's schema; strict also refuses fields the schema does not list."""
    _validator(name, strict).validate(instance)


def tgi_events(response: httpx.Response) -> list[dict[str, Any]]:
    """TGI's SSE body: `data:{json}` blocks, no space after the colon, no [DONE]."""
    assert response.headers["content-type"].startswith("text/event-stream")
    events = []
    for block in response.text.split("\n\n"):
        if not block:
            continue
        assert block.startswith("data:{"), block
        events.append(json.loads(block.removeprefix("data:")))
    return events


def openai_chunks(response: httpx.Response) -> list[str]:
    assert response.headers["content-type"].startswith("text/event-stream")
    blocks = [b for b in response.text.split("\n\n") if b]
    assert all(b.startswith("data: ") for b in blocks), blocks
    return [b.removeprefix("data: ") for b in blocks]


def wait_until(predicate: Callable[[], bool], timeout: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def generate_body(**parameters: Any) -> dict[str, Any]:
    return {"inputs": PROMPT, "parameters": parameters}


# ------------------------------------------------------------------ the schema helper


def test_schema_helper_is_not_vacuous() -> None:
    token = {"id": 1, "text": "x", "logprob": None, "special": False}
    check("StreamResponse", {"index": 1, "token": token, "generated_text": None, "details": None})
    with pytest.raises(jsonschema.ValidationError):  # Details requires prefill and tokens
        check("Details", {"finish_reason": "length", "generated_tokens": 1})
    with pytest.raises(jsonschema.ValidationError):
        check("StreamDetails", {"finish_reason": "stop", "generated_tokens": 1, "input_length": 1})
    with pytest.raises(jsonschema.ValidationError):  # strict: no invented fields
        check("Token", {**token, "logprobs": -1.0})
    check("Token", {**token, "logprobs": -1.0}, strict=False)


# ------------------------------------------------------------------ TGI native, ok mode


def test_info_validates_and_reports_the_limits(client: httpx.Client) -> None:
    info = client.get("/info").json()
    check("Info", info)
    assert info["model_id"] == MODEL_ID
    assert (info["max_input_tokens"], info["max_total_tokens"]) == (64, 96)


def test_health(client: httpx.Client) -> None:
    assert client.get("/health").status_code == 200


@pytest.mark.parametrize("text", [PROMPT, "<s>The patient 咳嗽 3 days 龘</s>"])
def test_tokenize_ids_are_the_format_modules(
    client: httpx.Client, tok: Tokenizer, text: str
) -> None:
    response = client.post("/tokenize", json={"inputs": text})
    assert response.status_code == 200
    tokens = response.json()
    check("TokenizeResponse", tokens)
    assert [t["id"] for t in tokens] == tok.encode_text_form(text)
    assert [t["text"] for t in tokens] == [tok.id_to_token(t["id"]) for t in tokens]
    bounds = [(t["start"], t["stop"]) for t in tokens]
    assert all(a <= b for a, b in bounds)
    assert all(prev[1] <= cur[0] for prev, cur in itertools.pairwise(bounds))
    assert bounds[-1][1] == len(text)


def test_generate_with_details(client: httpx.Client, tok: Tokenizer) -> None:
    response = client.post("/generate", json=generate_body(details=True))
    assert response.status_code == 200
    body = response.json()
    check("GenerateResponse", body)
    assert body["generated_text"] == REPLY_TEXT
    details = body["details"]
    # The engine ends on EOS: a special token, counted, absent from the text.
    assert details["finish_reason"] == "eos_token"
    assert details["generated_tokens"] == len(DEFAULT_REPLY) + 1
    assert [t["text"] for t in details["tokens"][:-1]] == list(DEFAULT_REPLY)
    assert details["tokens"][-1] == {
        "id": tok.eos_id,
        "text": "</s>",
        "logprob": details["tokens"][-1]["logprob"],
        "special": True,
    }
    assert details["prefill"] == [] and details["seed"] is None
    assert response.headers["x-prompt-tokens"] == str(len(tok.encode_text_form(PROMPT)))


def test_generate_details_default_to_off_as_in_tgi(client: httpx.Client) -> None:
    body = client.post("/generate", json={"inputs": PROMPT}).json()
    check("GenerateResponse", body)
    assert body == {"generated_text": REPLY_TEXT}


def test_generate_sampling_reports_the_seed(client: httpx.Client) -> None:
    body = client.post("/generate", json=generate_body(details=True, do_sample=True, seed=7)).json()
    check("GenerateResponse", body)
    assert body["details"]["seed"] == 7


def test_generate_stream_events(client: httpx.Client, tok: Tokenizer) -> None:
    response = client.post("/generate_stream", json=generate_body(details=True))
    assert response.status_code == 200
    assert "[DONE]" not in response.text
    events = tgi_events(response)
    for event in events:
        check("StreamResponse", event)
    assert [e["index"] for e in events] == list(range(1, len(DEFAULT_REPLY) + 2))
    *tokens, final = events
    assert all(e["generated_text"] is None and e["details"] is None for e in tokens)
    assert final["token"]["special"] is True
    assert final["generated_text"] == REPLY_TEXT
    assert "".join(e["token"]["text"] for e in events if not e["token"]["special"]) == REPLY_TEXT
    check("StreamDetails", final["details"])
    assert final["details"] == {
        "finish_reason": "eos_token",
        "generated_tokens": len(DEFAULT_REPLY) + 1,
        "seed": None,
        "input_length": len(tok.encode_text_form(PROMPT)),
    }


def test_generate_stream_without_details_still_ends_with_the_text(client: httpx.Client) -> None:
    final = tgi_events(client.post("/generate_stream", json={"inputs": PROMPT}))[-1]
    check("StreamResponse", final)
    assert final["generated_text"] == REPLY_TEXT and final["details"] is None


def test_max_new_tokens_caps_the_reply(client: httpx.Client) -> None:
    body = client.post("/generate", json=generate_body(details=True, max_new_tokens=3)).json()
    check("GenerateResponse", body)
    assert body["generated_text"] == "".join(DEFAULT_REPLY[:3])
    assert (body["details"]["finish_reason"], body["details"]["generated_tokens"]) == ("length", 3)

    events = tgi_events(
        client.post("/generate_stream", json=generate_body(details=True, max_new_tokens=3))
    )
    assert len(events) == 3
    assert events[-1]["details"]["finish_reason"] == "length"
    assert events[-1]["generated_text"] == "".join(DEFAULT_REPLY[:3])


def test_scripted_reply_and_first_token_delay(
    emulator: EmulatorHandle, client: httpx.Client
) -> None:
    emulator.control(reply_tokens=["多", "喝水"], first_token_delay=0.2)
    started = time.monotonic()
    body = client.post("/generate", json={"inputs": PROMPT}).json()
    assert time.monotonic() - started >= 0.2
    assert body["generated_text"] == "多喝水"


# ------------------------------------------------------------------ TGI validation


def test_prompt_over_max_input_tokens(client: httpx.Client, tok: Tokenizer) -> None:
    long_prompt = "<s><reserved_102>" + "头痛，发烧，咳嗽。" * 20 + "<reserved_103>"
    assert len(tok.encode_text_form(long_prompt)) > MAX_INPUT_TOKENS
    response = client.post("/generate", json={"inputs": long_prompt})
    assert response.status_code == 422
    check("ErrorResponse", response.json())
    assert response.json()["error_type"] == "validation"
    assert "must have less than 64 tokens" in response.json()["error"]

    stream = client.post("/generate_stream", json={"inputs": long_prompt})
    assert stream.status_code == 200  # TGI reports stream failures as events
    [event] = tgi_events(stream)
    check("ErrorResponse", event)
    assert event["error_type"] == "validation"


def test_prompt_plus_max_new_tokens_over_max_total(client: httpx.Client, tok: Tokenizer) -> None:
    prompt_tokens = len(tok.encode_text_form(PROMPT))
    too_many = MAX_TOTAL_TOKENS - prompt_tokens + 1
    response = client.post("/generate", json=generate_body(max_new_tokens=too_many))
    assert response.status_code == 422
    assert f"must be <= {MAX_TOTAL_TOKENS}" in response.json()["error"]
    ok = client.post("/generate", json=generate_body(max_new_tokens=too_many - 1))
    assert ok.status_code == 200


@pytest.mark.parametrize(
    "parameters",
    [{"top_p": 1.0}, {"top_p": 0.0}, {"temperature": 0}, {"max_new_tokens": 0}],
)
def test_tgi_parameter_rules(client: httpx.Client, parameters: dict[str, Any]) -> None:
    response = client.post("/generate", json=generate_body(**parameters))
    assert response.status_code == 422
    check("ErrorResponse", response.json())
    assert response.json()["error"].startswith("Input validation error: `")


def test_wrong_types_are_rejected_before_the_stream(client: httpx.Client) -> None:
    # serde's rejection: plain text, not TGI's JSON error, even on /generate_stream.
    response = client.post("/generate_stream", json=generate_body(max_new_tokens="20"))
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/plain")
    unsupported = client.post("/generate", content=json.dumps({"inputs": PROMPT}))
    assert unsupported.status_code == 415


# ------------------------------------------------------------------ TGI failure modes


@pytest.mark.parametrize(
    ("mode", "status", "error_type"),
    [
        ("overloaded", 429, "overloaded"),
        ("validation", 422, "validation"),
        ("generation_error", 424, "generation"),
    ],
)
def test_generate_error_modes(
    emulator: EmulatorHandle, client: httpx.Client, mode: str, status: int, error_type: str
) -> None:
    emulator.control(mode=mode)
    response = client.post("/generate", json=generate_body(details=True))
    assert response.status_code == status
    check("ErrorResponse", response.json())
    assert response.json()["error_type"] == error_type


@pytest.mark.parametrize(
    ("mode", "tokens_first", "error_type"),
    [
        ("overloaded", 0, "overloaded"),
        ("validation", 0, "validation"),
        ("generation_error", 2, "generation"),
    ],
)
def test_generate_stream_error_modes(
    emulator: EmulatorHandle, client: httpx.Client, mode: str, tokens_first: int, error_type: str
) -> None:
    emulator.control(mode=mode)
    response = client.post("/generate_stream", json=generate_body(details=True))
    assert response.status_code == 200
    *tokens, error = tgi_events(response)
    assert len(tokens) == tokens_first
    for event in tokens:
        check("StreamResponse", event)
        assert event["generated_text"] is None
    check("ErrorResponse", error)
    assert error["error_type"] == error_type


@pytest.mark.parametrize("path", ["/generate", "/generate_stream", "/v1/completions"])
def test_http_500_is_not_json(emulator: EmulatorHandle, client: httpx.Client, path: str) -> None:
    emulator.control(mode="http_500")
    response = client.post(path, json={"inputs": PROMPT, "prompt": PROMPT, "stream": True})
    assert response.status_code == 500
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)


def test_garbage_is_a_200_that_does_not_parse(
    emulator: EmulatorHandle, client: httpx.Client
) -> None:
    emulator.control(mode="garbage")
    plain = client.post("/generate", json=generate_body())
    assert plain.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        plain.json()
    stream = client.post("/generate_stream", json=generate_body())
    assert stream.status_code == 200
    assert stream.text.startswith("data:")
    with pytest.raises(json.JSONDecodeError):
        json.loads(stream.text.strip().removeprefix("data:"))
    completion = client.post("/v1/completions", json={"prompt": PROMPT})
    assert completion.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        completion.json()


def test_truncated_stream(emulator: EmulatorHandle, client: httpx.Client) -> None:
    emulator.control(mode="truncated_stream")
    events = tgi_events(client.post("/generate_stream", json=generate_body(details=True)))
    assert len(events) == 2
    assert all("error" not in e and e["generated_text"] is None for e in events)

    chunks = openai_chunks(client.post("/v1/completions", json={"prompt": PROMPT, "stream": True}))
    assert len(chunks) == 2 and "[DONE]" not in chunks

    # Non-stream: the body stops short of its Content-Length.
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/generate", json=generate_body())


def test_hang_then_disconnect_is_counted(emulator: EmulatorHandle, client: httpx.Client) -> None:
    emulator.control(mode="hang")
    with client.stream("POST", "/generate_stream", json=generate_body()) as response:
        assert response.status_code == 200  # headers come at once, tokens never do
    assert wait_until(lambda: emulator.state()["disconnects"] == 1)

    with pytest.raises(httpx.ReadTimeout):
        client.post("/generate", json=generate_body(), timeout=0.2)
    assert wait_until(lambda: emulator.state()["disconnects"] == 2)


def test_disconnect_mid_stream_stops_generation(
    emulator: EmulatorHandle, client: httpx.Client
) -> None:
    emulator.control(token_delay=0.5)
    with client.stream("POST", "/generate_stream", json=generate_body()) as response:
        first = next(response.iter_lines())
        assert first.startswith("data:{")
    assert wait_until(lambda: emulator.state()["disconnects"] == 1)


# ------------------------------------------------------------------ OpenAI-compatible


def test_completion(client: httpx.Client, tok: Tokenizer) -> None:
    response = client.post("/v1/completions", json={"model": MODEL_ID, "prompt": PROMPT})
    assert response.status_code == 200
    body = response.json()
    check("CompletionFinal", body, strict=False)
    assert body["object"] == "text_completion"
    [choice] = body["choices"]
    assert (choice["text"], choice["finish_reason"]) == (REPLY_TEXT, "stop")
    prompt_tokens = len(tok.encode_text_form(PROMPT))
    completion_tokens = len(DEFAULT_REPLY) + 1  # EOS counts
    assert body["usage"] == {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def test_completion_stream(client: httpx.Client, tok: Tokenizer) -> None:
    response = client.post("/v1/completions", json={"prompt": PROMPT, "stream": True})
    assert response.status_code == 200
    *chunks, done = openai_chunks(response)
    assert done == "[DONE]"
    parsed = [json.loads(c) for c in chunks]
    assert all(c["choices"][0]["finish_reason"] is None and "usage" not in c for c in parsed[:-1])
    for chunk in parsed:
        # OpenAI and vLLM send finish_reason null until the end; TGI's schema (and TGI) "".
        [choice] = chunk["choices"]
        check("Chunk", {**chunk, "choices": [{**choice, "finish_reason": ""}]}, strict=False)
        assert chunk["object"] == "text_completion"
    final = parsed[-1]
    check("CompletionFinal", final, strict=False)
    assert final["choices"][0]["finish_reason"] == "stop"
    assert final["usage"]["prompt_tokens"] == len(tok.encode_text_form(PROMPT))
    assert "".join(c["choices"][0]["text"] for c in parsed) == REPLY_TEXT


def test_completion_max_tokens_caps(client: httpx.Client) -> None:
    body = client.post("/v1/completions", json={"prompt": PROMPT, "max_tokens": 2}).json()
    assert body["choices"][0] == {
        "index": 0,
        "text": "".join(DEFAULT_REPLY[:2]),
        "logprobs": None,
        "finish_reason": "length",
    }
    assert body["usage"]["completion_tokens"] == 2


def test_completion_too_long_is_400(client: httpx.Client) -> None:
    response = client.post(
        "/v1/completions", json={"prompt": PROMPT, "max_tokens": MAX_TOTAL_TOKENS}
    )
    assert response.status_code == 400
    assert "maximum context length is 96" in response.json()["error"]["message"]


def test_completion_unknown_model_is_404(client: httpx.Client) -> None:
    response = client.post("/v1/completions", json={"model": "gpt-4", "prompt": PROMPT})
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("mode", "status"), [("overloaded", 429), ("validation", 400), ("generation_error", 500)]
)
def test_completion_error_modes(
    emulator: EmulatorHandle, client: httpx.Client, mode: str, status: int
) -> None:
    emulator.control(mode=mode)
    response = client.post("/v1/completions", json={"prompt": PROMPT})
    assert response.status_code == status
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_completion_stream_generation_error(emulator: EmulatorHandle, client: httpx.Client) -> None:
    emulator.control(mode="generation_error")
    *chunks, error, done = openai_chunks(
        client.post("/v1/completions", json={"prompt": PROMPT, "stream": True})
    )
    assert len(chunks) == 2 and done == "[DONE]"
    assert json.loads(error)["error"]["code"] == 500


def test_models(client: httpx.Client) -> None:
    # TGI's schema says a bare ModelInfo; TGI's code (and vLLM) answer an OpenAI list.
    body = client.get("/v1/models").json()
    assert body["object"] == "list"
    [model] = body["data"]
    check("ModelInfo", model, strict=False)
    assert model["id"] == MODEL_ID and model["max_model_len"] == MAX_TOTAL_TOKENS


# ------------------------------------------------------------------ recording and control


def test_requests_are_recorded(emulator: EmulatorHandle, client: httpx.Client) -> None:
    body = generate_body(max_new_tokens=2)
    client.post("/generate", json=body)
    client.get("/info")
    state = emulator.state()
    assert state["requests"] == [
        {"method": "POST", "path": "/generate", "body": body},
        {"method": "GET", "path": "/info", "body": None},
    ]
    emulator.control(reset=True)
    assert emulator.state()["requests"] == []


def test_control_rejects_what_it_does_not_know(emulator: EmulatorHandle) -> None:
    with pytest.raises(EmulatorError, match="unknown control fields"):
        emulator.control(temperature=0.5)
    with pytest.raises(EmulatorError, match="mode must be one of"):
        emulator.control(mode="slow")
    with pytest.raises(EmulatorError, match="token_delay"):
        emulator.control(token_delay=-1)
    assert emulator.state()["mode"] == "ok"


def test_run_emulator_reports_a_failed_start(tmp_path: Path) -> None:
    with (
        pytest.raises(EmulatorError, match="TokenizerLoadError"),
        run_emulator(tmp_path / "no-tokenizer"),
    ):
        pass
