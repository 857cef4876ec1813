"""The engine client's timeouts, enforced once per stream (not by a timer per chunk), and
its connections: what a generation does when the engine is silent, slow or cut off.

- First token: no answer head, or a head and then nothing, within `first_token_timeout_s`.
- Stall: tokens, then silence longer than `first_token_timeout_s` (aiohttp's sock_read).
- Total: a stream that keeps going past `total_timeout_s`.
Each fails as EngineTimeout (504 engine_timeout) with the tokens before it kept; a consumer
that is slow itself is no stall; `cancel()` drops the upstream request; a finished stream
gives its connection back to the pool.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import suppress

import orjson
import pytest
from aiohttp import web

from services.gateway.engine import (
    EngineClient,
    Finish,
    GenerationParams,
    OpenAICompletionsClient,
    TGIClient,
    Token,
)
from services.gateway.engine.errors import EngineError, EngineTimeout
from tests.gateway.engine.test_engine_faults import _server

PARAMS = GenerationParams(max_new_tokens=8, do_sample=False)
# Silence well past the timeouts under test (0.2-0.6 s), short enough that the test server
# shuts down quickly (its handler outlives the client that left).
SILENCE_S = 2.0


def tgi_event(text: str, final: bool = False) -> bytes:
    event = {
        "token": {"id": 1, "text": text, "logprob": -0.1, "special": False},
        "generated_text": text if final else None,
        "details": {"finish_reason": "length", "generated_tokens": 1} if final else None,
    }
    return b"data:" + orjson.dumps(event) + b"\n\n"


async def collect(
    client: EngineClient, pause_s: float = 0.0
) -> tuple[list[Token | Finish], EngineError | None, float]:
    """Events, the error that ended them, seconds taken; `pause_s`: a slow consumer."""
    events: list[Token | Finish] = []
    started = time.monotonic()
    try:
        async for event in client.generate("<prompt>", PARAMS):
            events.append(event)
            await asyncio.sleep(pause_s)
    except EngineError as exc:
        return events, exc, time.monotonic() - started
    return events, None, time.monotonic() - started


def texts(events: list[Token | Finish]) -> list[str]:
    return [e.text for e in events if isinstance(e, Token)]


async def _stream(request: web.Request, *parts: bytes | float) -> web.StreamResponse:
    """An SSE answer: bytes are written, numbers are pauses (seconds)."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    with suppress(ConnectionError):
        for part in parts:
            if isinstance(part, float):
                await asyncio.sleep(part)
            else:
                await response.write(part)
        await response.write_eof()
    return response


@pytest.mark.asyncio
async def test_no_answer_head_is_a_first_token_timeout() -> None:
    async def silent(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(SILENCE_S)
        return web.Response(status=500)  # too late: the client timed out before

    async with _server({"/generate_stream": silent}) as url:
        client = TGIClient(url, first_token_timeout_s=0.3, retries=0)
        try:
            events, exc, took = await asyncio.wait_for(collect(client), 10)
        finally:
            await client.close()
    assert events == [] and isinstance(exc, EngineTimeout), repr(exc)
    assert exc.code == "engine_timeout" and exc.status == 504
    assert 0.25 < took < 1.5


@pytest.mark.asyncio
async def test_head_then_nothing_is_a_first_token_timeout() -> None:
    async def hang(request: web.Request) -> web.StreamResponse:
        return await _stream(request, SILENCE_S)

    async with _server({"/generate_stream": hang}) as url:
        client = TGIClient(url, first_token_timeout_s=0.3, retries=0)
        try:
            events, exc, took = await asyncio.wait_for(collect(client), 10)
        finally:
            await client.close()
    assert events == [] and isinstance(exc, EngineTimeout), repr(exc)
    assert "first token" in exc.detail
    assert 0.25 < took < 1.5


@pytest.mark.parametrize("protocol", ["tgi", "openai"])
@pytest.mark.asyncio
async def test_a_stream_that_stalls_times_out_and_keeps_its_tokens(protocol: str) -> None:
    if protocol == "tgi":
        path, first = "/generate_stream", [tgi_event("您好"), tgi_event("，")]
    else:
        path = "/v1/completions"
        first = [
            b"data: " + orjson.dumps({"choices": [{"text": t, "finish_reason": None}]}) + b"\n\n"
            for t in ("您好", "，")
        ]

    async def stall(request: web.Request) -> web.StreamResponse:
        return await _stream(request, *first, SILENCE_S)

    async with _server({path: stall}) as url:
        client: EngineClient = (
            TGIClient(url, first_token_timeout_s=0.4, retries=0)
            if protocol == "tgi"
            else OpenAICompletionsClient(url, model="m", first_token_timeout_s=0.4, retries=0)
        )
        try:
            events, exc, took = await asyncio.wait_for(collect(client), 10)
        finally:
            await client.close()
    assert texts(events) == ["您好", "，"]
    assert isinstance(exc, EngineTimeout) and exc.code == "engine_timeout", repr(exc)
    assert "next token" in exc.detail
    assert 0.35 < took < 1.5


@pytest.mark.asyncio
async def test_a_stream_past_its_total_timeout_is_ended() -> None:
    """Tokens keep coming (no stall), but the answer takes longer than the total allows."""

    async def endless(request: web.Request) -> web.StreamResponse:
        return await _stream(request, *[p for _ in range(200) for p in (tgi_event("多"), 0.02)])

    async with _server({"/generate_stream": endless}) as url:
        client = TGIClient(url, first_token_timeout_s=0.3, total_timeout_s=0.6, retries=0)
        try:
            events, exc, took = await asyncio.wait_for(collect(client), 10)
        finally:
            await client.close()
    assert isinstance(exc, EngineTimeout), repr(exc)
    assert "in time" in exc.detail
    assert len(texts(events)) > 5
    assert 0.55 < took < 1.5


@pytest.mark.asyncio
async def test_a_slow_consumer_is_no_stall() -> None:
    """The engine sent everything at once; the caller takes longer than the stall timeout
    between events (a slow client downstream): nothing times out."""

    async def fast(request: web.Request) -> web.StreamResponse:
        return await _stream(request, tgi_event("您"), tgi_event("好"), tgi_event("。", True))

    async with _server({"/generate_stream": fast}) as url:
        client = TGIClient(url, first_token_timeout_s=0.2, retries=0)
        try:
            events, exc, _ = await asyncio.wait_for(collect(client, pause_s=0.3), 10)
        finally:
            await client.close()
    assert exc is None, repr(exc)
    assert texts(events) == ["您", "好", "。"] and isinstance(events[-1], Finish)


@pytest.mark.asyncio
async def test_cancel_drops_the_upstream_request() -> None:
    left = asyncio.Event()

    async def long(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            for _ in range(500):
                await response.write(tgi_event("多"))
                await asyncio.sleep(0.01)
        except ConnectionError:
            left.set()
        return response

    async with _server({"/generate_stream": long}) as url:
        client = TGIClient(url, retries=0)
        try:
            generation = client.generate("<prompt>", PARAMS)
            seen = 0
            async for event in generation:
                seen += isinstance(event, Token)
                if seen == 3:
                    generation.cancel()
            await asyncio.wait_for(left.wait(), 5)  # the engine saw the client leave
        finally:
            await client.close()
    assert seen == 3  # the stream ended quietly at the cancel, no error


@pytest.mark.asyncio
async def test_finished_streams_reuse_one_connection() -> None:
    peers: set[object] = set()

    async def answer(request: web.Request) -> web.StreamResponse:
        peers.add(request.transport.get_extra_info("peername") if request.transport else None)
        return await _stream(request, tgi_event("好"), tgi_event("。", True))

    async with _server({"/generate_stream": answer}) as url:
        client = TGIClient(url, retries=0)
        try:
            for _ in range(5):
                events, exc, _ = await asyncio.wait_for(collect(client), 10)
                assert exc is None and isinstance(events[-1], Finish), repr(exc)
                await asyncio.sleep(0.05)  # the body's end arrives after the final event
        finally:
            await client.close()
    assert len(peers) == 1, peers
