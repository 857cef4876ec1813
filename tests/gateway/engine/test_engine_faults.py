"""Engine failures as patients and integrators meet them.

- An engine that cannot be reached: the 503 (web chat, streamed or not, and /v1), the stored
  failed answer and /readyz say it in plain words with the request id; the engine's address
  and the network exception go to the log only.
- An engine that breaks its stream mid-answer (an error event, `transformers serve`'s
  undecodable-bytes error chunk, a body that ends or a connection that drops early, an event
  that is not JSON): the question and the partial answer are stored (status failed), the
  patient is told (SSE `error`, or 502), nothing hangs or answers 500, and the session goes
  on.
"""

from __future__ import annotations

import asyncio
import logging
import random
import string
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web
from aiohttp.typedefs import Handler

from services.core.chatformat import chat_format, load_tokenizer
from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from services.gateway.engine import (
    EngineClient,
    Finish,
    GenerationParams,
    OpenAICompletionsClient,
    TGIClient,
    Token,
)
from services.gateway.engine.canary import check_tokenization
from services.gateway.engine.errors import (
    EngineError,
    EngineGenerationFailed,
    EngineProtocolError,
    EngineUnavailable,
    user_message,
)
from services.gateway.observability import request_id
from tests.gateway.chat.test_chat import sse_events
from tests.support.engine_emulator import DECODE_FAILED, EmulatorHandle
from tests.support.platform import REPLY, Patient, make_key
from tests.support.servers import free_port, serve

PARTIAL = "".join(REPLY[:2])  # every broken-stream mode sends 2 tokens first
BROKEN_MODES = [
    "generation_error",  # TGI's error event; vLLM's error chunk, then [DONE]
    "decode_error",  # transformers serve's {"error": "Invalid prefix ..."}, then the end
    "truncated_stream",
    "dropped_stream",
    "invalid_json",
]
# What must never reach a patient or an integrator: addresses, exception classes, the
# engine's own words.
LEAKS = (
    "127.0.0.1",
    "localhost",
    "http://",
    "aiohttp",
    "ClientConnector",
    "ClientPayload",
    "ClientOSError",
    "TransferEncoding",
    "Cannot connect",
    "Connect call failed",
    "Errno",
    "Invalid prefix",
    "emulated engine failure",
    "Request failed during generation",
    "/generate_stream",
    "/v1/completions",
)


def new_request_id() -> str:
    """Letters only: no digit of it can pass for a port number in a message."""
    return "req-" + "".join(random.choices(string.ascii_lowercase, k=20))


def assert_plain(message: str, rid: str, port: int | None = None) -> None:
    assert message, "an empty error message"
    for leak in LEAKS:
        assert leak not in message, f"{leak!r} reached the caller: {message!r}"
    if port is not None:
        assert str(port) not in message.replace(rid, ""), message
    assert rid in message, f"no request id in {message!r}"


@contextmanager
def gateway(settings: GatewaySettings, **changes: object) -> Iterator[str]:
    with serve(create_app(settings.model_copy(update=changes))) as url:
        yield url


@contextmanager
def guest(url: str) -> Iterator[Patient]:
    with httpx.Client(base_url=url, timeout=30) as client:
        r = client.post("/api/auth/guest")
        assert r.status_code == 201, r.text
        yield Patient(client, r.json()["csrf_token"])


def post_question(p: Patient, sid: str, content: str, rid: str, *, stream: bool) -> httpx.Response:
    return p.client.post(
        f"/api/sessions/{sid}/messages",
        json={"content": content, "stream": stream},
        headers={"X-CSRF-Token": p.csrf, "X-Request-ID": rid},
    )


def stored(p: Patient, sid: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = p.get(f"/api/sessions/{sid}").json()["messages"]
    return messages


# ------------------------------------------------------------------ the engine is down


@pytest.fixture(scope="module")
def down(gateway_settings: GatewaySettings) -> Iterator[tuple[str, int]]:
    """A gateway whose engine URL points at a port nothing listens on."""
    port = free_port()
    with gateway(gateway_settings, engine_url=f"http://127.0.0.1:{port}", engine_retries=0) as url:
        yield url, port


def test_engine_down_web_chat_says_plain_words_and_logs_the_address(
    down: tuple[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    url, port = down
    caplog.set_level(logging.WARNING)
    question = "我头痛得厉害，还发烧三十九度"
    with guest(url) as p:
        sid = p.post("/api/sessions", json={}).json()["id"]
        rids = []
        for stream in (False, True):
            rid = new_request_id()
            rids.append(rid)
            r = post_question(p, sid, question, rid, stream=stream)
            assert r.status_code == 503 and r.headers["retry-after"], r.text
            assert r.headers["x-request-id"] == rid
            error = r.json()["error"]
            assert error["code"] == "engine_unavailable"
            assert_plain(error["message"], rid, port)
        messages = stored(p, sid)
    # Both questions kept, each with its failed answer, which says what the 503 said.
    assert [(m["role"], m["status"]) for m in messages] == [
        ("user", "complete"),
        ("assistant", "failed"),
    ] * 2
    assert messages[0]["content"] == question
    for answer, rid in zip(messages[1::2], rids, strict=True):
        assert_plain(answer["error"], rid, port)
    logged = [r.getMessage() for r in caplog.records]
    assert any(f"127.0.0.1:{port}" in line for line in logged), logged
    assert any(
        r.levelno == logging.WARNING and f"127.0.0.1:{port}" in r.getMessage()
        for r in caplog.records
        if r.name.startswith("services.gateway.engine")
    )
    assert not any(question in line for line in logged)


def test_engine_down_request_id_made_by_the_gateway(down: tuple[str, int]) -> None:
    url, port = down
    with guest(url) as p:
        sid = p.post("/api/sessions", json={}).json()["id"]
        r = p.post(f"/api/sessions/{sid}/messages", json={"content": "咳嗽", "stream": False})
    assert r.status_code == 503
    assert_plain(r.json()["error"]["message"], r.headers["x-request-id"], port)


def test_engine_down_openai_api_says_plain_words(
    down: tuple[str, int], database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    url, port = down
    caplog.set_level(logging.WARNING)
    key = make_key(database_url, "integrator")
    body = {"model": "disc-medllm", "messages": [{"role": "user", "content": "头痛"}]}
    with httpx.Client(base_url=url, timeout=30) as client:
        for stream in (False, True):
            rid = new_request_id()
            r = client.post(
                "/v1/chat/completions",
                json={**body, "stream": stream},
                headers={"Authorization": f"Bearer {key}", "X-Request-ID": rid},
            )
            assert r.status_code == 503 and r.headers["retry-after"], r.text
            error = r.json()["error"]
            assert error["code"] == "engine_unavailable"
            assert_plain(error["message"], rid, port)
    assert any(f"127.0.0.1:{port}" in r.getMessage() for r in caplog.records)


def test_engine_down_readiness_names_no_address(down: tuple[str, int]) -> None:
    url, port = down
    ready = httpx.get(f"{url}/readyz", timeout=30)
    assert ready.status_code == 503
    detail = ready.json()["engine_detail"]
    assert "127.0.0.1" not in detail and str(port) not in detail and "http://" not in detail


@pytest.mark.asyncio
async def test_canary_keeps_the_address_in_the_log(
    sp_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    port = free_port()
    client = TGIClient(f"http://127.0.0.1:{port}", retries=0)
    try:
        result = await check_tokenization(client, chat_format(load_tokenizer(sp_dir)))
    finally:
        await client.close()
    assert result.state == "unreachable"
    assert "127.0.0.1" not in result.detail and str(port) not in result.detail
    assert any(f"127.0.0.1:{port}" in r.getMessage() for r in caplog.records)


def test_engine_errors_say_their_detail_only_to_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    exc = EngineUnavailable("cannot reach the engine at http://10.0.0.7:8080: ClientOSError")
    assert "10.0.0.7" not in str(exc) and "10.0.0.7" in exc.detail
    token = request_id.set("req-abc")
    try:
        said = user_message(exc)
        assert user_message(exc) == said  # logged once however often it is said
    finally:
        request_id.reset(token)
    assert said == f"{EngineUnavailable.public} (request id: req-abc)"
    assert [r.getMessage() for r in caplog.records if "10.0.0.7" in r.getMessage()] == [
        "engine failure engine_unavailable: " + exc.detail
    ]


# ------------------------------------------------------------------ broken streams


@pytest.fixture(scope="module")
def openai_gateway(gateway_settings: GatewaySettings, engine: EmulatorHandle) -> Iterator[str]:
    """The gateway speaking the OpenAI protocol to the same emulator."""
    model = httpx.get(f"{engine.url}/v1/models").json()["data"][0]["id"]
    with gateway(gateway_settings, engine_protocol="openai", engine_model=model) as url:
        yield url


@pytest.fixture(params=["tgi", "openai"])
def protocol_url(request: pytest.FixtureRequest, gateway_url: str) -> str:
    if request.param == "tgi":
        return gateway_url
    url: str = request.getfixturevalue("openai_gateway")
    return url


@pytest.mark.parametrize("mode", BROKEN_MODES)
def test_broken_stream_keeps_the_partial_answer_and_the_session_goes_on(
    protocol_url: str, engine: EmulatorHandle, mode: str
) -> None:
    with guest(protocol_url) as p:
        sid = p.post("/api/sessions", json={}).json()["id"]
        engine.control(mode=mode)

        # Streamed: the partial text, then one `error` event with the stored answer.
        rid = new_request_id()
        started = time.monotonic()
        with p.client.stream(
            "POST",
            f"/api/sessions/{sid}/messages",
            json={"content": "头晕三天", "stream": True},
            headers={"X-CSRF-Token": p.csrf, "X-Request-ID": rid},
        ) as r:
            assert r.status_code == 200
            events = list(sse_events(r))
        assert time.monotonic() - started < 10, "the broken stream was not ended promptly"
        kinds = [kind for kind, _ in events]
        assert kinds[0] == "meta" and kinds[-1] == "error" and "done" not in kinds, kinds
        assert "".join(d["text"] for kind, d in events if kind == "delta") == PARTIAL
        error = events[-1][1]
        assert error["error"]["code"] == "engine_generation_failed"
        assert_plain(error["error"]["message"], rid)
        assert error["message"]["status"] == "failed"
        assert error["message"]["content"] == PARTIAL
        assert error["message"]["error"] == error["error"]["message"]

        # Not streamed: a 502 saying the same.
        rid2 = new_request_id()
        whole = post_question(p, sid, "还有点恶心", rid2, stream=False)
        assert whole.status_code == 502, whole.text
        assert whole.json()["error"]["code"] == "engine_generation_failed"
        assert_plain(whole.json()["error"]["message"], rid2)

        messages = stored(p, sid)
        assert [(m["role"], m["status"], m["content"]) for m in messages] == [
            ("user", "complete", "头晕三天"),
            ("assistant", "failed", PARTIAL),
            ("user", "complete", "还有点恶心"),
            ("assistant", "failed", PARTIAL),
        ]
        assert_plain(messages[1]["error"], rid)
        assert_plain(messages[3]["error"], rid2)

        # The session goes on; failed answers are not part of the dialogue.
        engine.control(mode="ok")
        again = post_question(p, sid, "现在好多了", new_request_id(), stream=False)
        assert again.status_code == 200, again.text
        assert again.json()["message"]["status"] == "complete"
        assert again.json()["message"]["content"] == "".join(REPLY)
        assert again.json()["turns_used"] == 3  # the three questions, no failed answer


def _openai_request(url: str, key: str, stream: bool, rid: str) -> tuple[httpx.Response, list[Any]]:
    body = {
        "model": "disc-medllm",
        "messages": [{"role": "user", "content": "头痛"}],
        "stream": stream,
    }
    headers = {"Authorization": f"Bearer {key}", "X-Request-ID": rid}
    with (
        httpx.Client(base_url=url, timeout=30) as client,
        client.stream("POST", "/v1/chat/completions", json=body, headers=headers) as r,
    ):
        r.read()
        if not stream or r.status_code != 200:
            return r, []
        chunks = [
            line[6:] if line == "data: [DONE]" else orjson.loads(line[6:])
            for line in r.iter_lines()
            if line.startswith("data: ")
        ]
        return r, chunks


@pytest.mark.parametrize("mode", ["decode_error", "dropped_stream", "invalid_json"])
def test_broken_stream_through_the_openai_api(
    openai_gateway: str, engine: EmulatorHandle, database_url: str, mode: str
) -> None:
    key = make_key(database_url, "integrator")
    engine.control(mode=mode)
    rid = new_request_id()
    r, _ = _openai_request(openai_gateway, key, False, rid)
    assert r.status_code == 502, r.text
    assert_plain(r.json()["error"]["message"], rid)

    rid = new_request_id()
    r, chunks = _openai_request(openai_gateway, key, True, rid)
    assert r.status_code == 200
    assert chunks[-1] == "[DONE]"
    error = chunks[-2]["error"]
    assert error["code"] == "engine_generation_failed" or error["code"] == "engine_bad_response"
    assert_plain(error["message"], rid)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-2])
    assert text == PARTIAL

    engine.control(mode="ok")
    r, _ = _openai_request(openai_gateway, key, False, new_request_id())
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "".join(REPLY)


# ------------------------------------------------------------------ the client itself

EXPECTED: dict[str, type[EngineError]] = {
    "generation_error": EngineGenerationFailed,
    "decode_error": EngineGenerationFailed,
    "truncated_stream": EngineGenerationFailed,
    "dropped_stream": EngineGenerationFailed,
    "invalid_json": EngineProtocolError,
}


async def _run(client: EngineClient) -> tuple[list[Token | Finish], EngineError | None]:
    events: list[Token | Finish] = []
    try:
        async for event in client.generate("<reserved_102>头痛<reserved_103>", PARAMS):
            events.append(event)
    except EngineError as exc:
        return events, exc
    finally:
        await client.close()
    return events, None


PARAMS = GenerationParams(max_new_tokens=32, do_sample=False)


@pytest.mark.parametrize("mode", BROKEN_MODES)
@pytest.mark.parametrize("protocol", ["tgi", "openai"])
@pytest.mark.asyncio
async def test_client_keeps_the_tokens_before_a_broken_stream(
    engine: EmulatorHandle, protocol: str, mode: str
) -> None:
    engine.control(mode=mode)
    client: EngineClient = (
        TGIClient(engine.url)
        if protocol == "tgi"
        else OpenAICompletionsClient(engine.url, model="disc-medllm-emulator")
    )
    events, exc = await _run(client)
    assert [e.text for e in events if isinstance(e, Token)] == REPLY[:2]
    assert not any(isinstance(e, Finish) for e in events)
    assert type(exc) is EXPECTED[mode], repr(exc)
    assert "127.0.0.1" not in str(exc)
    if mode == "decode_error":
        assert DECODE_FAILED[:60] in exc.detail  # the log says what the engine said


@pytest.mark.asyncio
async def test_openai_client_reads_transformers_serve_error_chunk_exactly() -> None:
    """The bytes `transformers serve` sends when DecodeStream fails: text chunks, then
    `data: {"error": "..."}` (json.dumps, ASCII-escaped) and the end of the body."""

    async def completions(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for text in ("您好", "，"):
            chunk = {"id": "x", "object": "text_completion", "created": 0, "model": "m"}
            chunk["choices"] = [{"index": 0, "text": text, "finish_reason": None}]
            await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
        await response.write(b"data: " + orjson.dumps({"error": DECODE_FAILED}) + b"\n\n")
        await response.write_eof()
        return response

    async with _server({"/v1/completions": completions}) as url:
        events, exc = await _run(OpenAICompletionsClient(url, model="m"))
    assert [e.text for e in events if isinstance(e, Token)] == ["您好", "，"]
    assert isinstance(exc, EngineGenerationFailed) and "Invalid prefix" in exc.detail
    assert "Invalid prefix" not in str(exc)


UNREADABLE = [
    pytest.param("openai", b'data: {"choices": [1]}\n\n', id="openai-choice-not-object"),
    pytest.param("openai", b'data: {"choices": "text"}\n\n', id="openai-choices-text"),
    pytest.param("openai", b'data: {"choices": [], "usage": 5}\n\n', id="openai-usage-number"),
    # One line past aiohttp's limit (512 KiB): LineTooLong, not a ClientError.
    pytest.param("openai", b"data: " + b"x" * 1_000_000 + b"\n\n", id="openai-line-too-long"),
    pytest.param(
        "tgi",
        b'data:{"token": {"text": "a"}, "generated_text": "a", "details": [1]}\n\n',
        id="tgi-details-list",
    ),
    pytest.param(
        "tgi",
        b'data:{"token": {"text": "a"}, "generated_text": "a",'
        b' "details": {"generated_tokens": "many"}}\n\n',
        id="tgi-token-count-text",
    ),
]


@pytest.mark.parametrize(("protocol", "body"), UNREADABLE)
@pytest.mark.asyncio
async def test_unreadable_events_fail_as_protocol_errors(protocol: str, body: bytes) -> None:
    """Fields of the wrong type fail the answer as unreadable (a 502 for the caller) rather
    than escaping as AttributeError or ValueError (a 500, and an answer stored as stopped)."""

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        with suppress(ConnectionError):  # the client may leave before the end
            await response.write(body)
            await response.write_eof()
        return response

    path = "/generate_stream" if protocol == "tgi" else "/v1/completions"
    async with _server({path: stream}) as url:
        client: EngineClient = (
            TGIClient(url) if protocol == "tgi" else OpenAICompletionsClient(url, model="m")
        )
        _, exc = await asyncio.wait_for(_run(client), 10)
    assert isinstance(exc, EngineProtocolError), repr(exc)


class _server:
    """An aiohttp app on a free port, for bytes no emulator mode sends."""

    def __init__(self, routes: dict[str, Handler]):
        self.app = web.Application()
        for path, handler in routes.items():
            self.app.router.add_post(path, handler)
        self.runner = web.AppRunner(self.app)

    async def __aenter__(self) -> str:
        await self.runner.setup()
        port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()
