"""Request-size limit as a pure ASGI middleware: 413 before the body is read into memory."""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import error_body


class BodySizeLimit:
    """`own_limit`: paths whose route streams the body and enforces a limit of its own (file
    uploads)."""

    def __init__(self, app: ASGIApp, max_bytes: int, own_limit: frozenset[str] = frozenset()):
        self.app = app
        self.max_bytes = max_bytes
        self.own_limit = own_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.own_limit:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit():
            # The common case costs nothing per message: the size is known up front.
            if int(declared) > self.max_bytes:
                await self._reject(send)
            else:
                await self.app(scope, receive, send)
            return
        if b"transfer-encoding" in headers:
            await self._chunked(scope, receive, send)
        else:  # no body at all
            await self.app(scope, receive, send)

    async def _chunked(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A body without Content-Length is counted as it arrives. FastAPI turns errors
        while reading a body into a 400, so on overflow the 413 is sent from here and the
        app is told the client left."""
        seen = 0
        rejected = False

        async def counting_receive() -> Message:
            nonlocal seen, rejected
            if rejected:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    rejected = True
                    await self._reject(send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not rejected:
                await send(message)

        await self.app(scope, counting_receive, guarded_send)

    async def _reject(self, send: Send) -> None:
        body = orjson.dumps(
            error_body(
                "payload_too_large",
                f"request body is larger than {self.max_bytes} bytes",
            )
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
