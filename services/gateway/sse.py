"""Server-sent event responses: one place for the headers every stream needs (no caching,
no buffering in a reverse proxy such as nginx), and the response that streams answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Callable

from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse_response(chunks: AsyncIterable[bytes]) -> StreamingResponse:
    return StreamingResponse(chunks, media_type="text/event-stream", headers=SSE_HEADERS)


class AnswerStream(StreamingResponse):
    """A model's answer as server-sent events; `stop()` is called when the client leaves.

    Starlette's StreamingResponse notices a client that leaves with an anyio task group
    around the stream (under uvicorn, whose ASGI spec version is 2.3), and ending that group
    formats the task's repr into anyio's cancel reason (both visible in py-spy profiles of
    bench/gateway_overhead.py). An answer has a cheaper and gentler way to
    stop: cancelling its generation (Answer.cancel) ends the body's iterator by itself, which
    then stores what was said, as the patient's stop button does; nothing is cancelled
    mid-await. One plain task per stream waits for the client to leave.

    The body is sent from a task of its own: each token then wakes only that task's few
    frames, not the ~20 coroutines of the middleware and routing stack the request's task
    is suspended in (bench/gateway_inprocess.py's load of 64-token answers, with this and
    the former inline send alternated in one process: ~0.1 ms of CPU per answer less, the
    median of 8 paired rounds). Cancelling the request cancels the body's task with it."""

    def __init__(self, chunks: AsyncIterable[bytes], stop: Callable[[], None]):
        super().__init__(chunks, media_type="text/event-stream", headers=SSE_HEADERS)
        self.stop = stop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watcher = asyncio.ensure_future(self._until_gone(receive))
        try:
            # After the client left, sends are dropped.
            await asyncio.ensure_future(self.stream_response(send))
        finally:
            watcher.cancel()

    async def _until_gone(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.stop()
