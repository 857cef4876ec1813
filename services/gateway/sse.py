"""Server-sent event responses: one place for the headers every stream needs (no caching,
no buffering in a reverse proxy such as nginx)."""

from __future__ import annotations

from collections.abc import AsyncIterable

from fastapi.responses import StreamingResponse

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse_response(chunks: AsyncIterable[bytes]) -> StreamingResponse:
    return StreamingResponse(chunks, media_type="text/event-stream", headers=SSE_HEADERS)
