"""AnswerStream: the body is sent from a task of its own, yet it behaves as if the request
sent it: failures reach the request, cancelling the request ends the body, a client that
leaves stops the answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from starlette.types import Message

from services.gateway.sse import AnswerStream

SCOPE = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": []}


class Client:
    """An ASGI client that records what was sent and can leave."""

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.first_chunk = asyncio.Event()
        self.gone = asyncio.Event()

    async def receive(self) -> Message:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)
        if message.get("body"):
            self.first_chunk.set()

    def bodies(self) -> list[bytes]:
        return [m["body"] for m in self.sent if m["type"] == "http.response.body" and m["body"]]


@pytest.mark.asyncio
async def test_a_client_that_leaves_stops_the_answer_which_ends_its_body() -> None:
    client, stopped, ended = Client(), asyncio.Event(), []

    async def body() -> AsyncIterator[bytes]:
        yield b"data: 1\n\n"
        await stopped.wait()  # the generation, until Answer.cancel ends it
        ended.append("after stop")

    call = asyncio.ensure_future(
        AnswerStream(body(), stopped.set)(SCOPE, client.receive, client.send)
    )
    await asyncio.wait_for(client.first_chunk.wait(), 5)
    client.gone.set()
    await asyncio.wait_for(call, 5)
    assert ended == ["after stop"]
    assert client.bodies() == [b"data: 1\n\n"]
    assert client.sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}


@pytest.mark.asyncio
async def test_cancelling_the_request_cancels_the_body() -> None:
    client, cleaned_up = Client(), asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        try:
            yield b"data: 1\n\n"
            await asyncio.Event().wait()  # an engine that never sends the next token
        finally:
            cleaned_up.set()

    call = asyncio.ensure_future(
        AnswerStream(body(), lambda: None)(SCOPE, client.receive, client.send)
    )
    await asyncio.wait_for(client.first_chunk.wait(), 5)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await asyncio.wait_for(cleaned_up.wait(), 5)


@pytest.mark.asyncio
async def test_a_failing_body_fails_the_request() -> None:
    client = Client()

    async def body() -> AsyncIterator[bytes]:
        yield b"data: 1\n\n"
        raise RuntimeError("the body broke")

    with pytest.raises(RuntimeError, match="the body broke"):
        await AnswerStream(body(), lambda: None)(SCOPE, client.receive, client.send)
    assert client.bodies() == [b"data: 1\n\n"]
