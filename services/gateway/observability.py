"""Structured JSON logs with request ids, and Prometheus metrics.

Logs never carry message text or secrets: the access line has method, route, status and
timing; domain code logs ids and error kinds only.
"""

from __future__ import annotations

import contextvars
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.core.privacy import redact

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
access_log = logging.getLogger("medchat.access")

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line; every text in it passes the PHI redactor, so a name or a
    phone number that slips into a message, an extra or a traceback never reaches the log."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
            "request_id": request_id.get(),
        }
        for k, v in record.__dict__.items():
            if k not in _RESERVED:
                entry[k] = redact(v) if isinstance(v, str) else v
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str = "INFO") -> None:
    """JSON lines on stderr for the whole process (idempotent)."""
    root = logging.getLogger()
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        root.handlers = [handler]
    root.setLevel(level)


class Metrics:
    """The gateway's Prometheus series, in a registry of its own per app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Histogram(
            "medchat_http_request_seconds",
            "HTTP request latency (to the last byte)",
            ["method", "route", "status"],
            registry=r,
        )
        self.ttft = Histogram(
            "medchat_time_to_first_token_seconds",
            "request start to the engine's first token",
            ["api"],
            registry=r,
            buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.tokens = Counter(
            "medchat_completion_tokens_total", "tokens generated", ["api"], registry=r
        )
        self.tokens_per_s = Histogram(
            "medchat_generation_tokens_per_second",
            "tokens per second of each answer",
            ["api"],
            registry=r,
            buckets=(1, 5, 10, 20, 40, 80, 160, 320),
        )
        self.engine_errors = Counter(
            "medchat_engine_errors_total", "engine failures by kind", ["code"], registry=r
        )
        self.active_streams = Gauge("medchat_active_streams", "answers being streamed", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)


HeaderHook = Callable[[Scope, set[bytes]], list[tuple[bytes, bytes]]]


class RequestContext:
    """Pure ASGI: a request id (taken from X-Request-ID or made), echoed in the response,
    bound to every log line; one access log line and one latency sample per request.
    `add_headers` contributes response headers decided during the request (rate limits):
    the one `send` wrapper of the stack serves them all."""

    def __init__(self, app: ASGIApp, metrics: Metrics, add_headers: HeaderHook | None = None):
        self.app = app
        self.metrics = metrics
        self.add_headers = add_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        rid = given if 0 < len(given) <= 128 and given.isprintable() else uuid.uuid4().hex
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500

        def send_with_id(message: Message) -> Awaitable[None]:
            # A plain function returning the inner send's awaitable: no coroutine of its own
            # per streamed chunk (it runs once per token of every answer).
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", []), (b"x-request-id", rid.encode())]
                if self.add_headers is not None:
                    headers += self.add_headers(scope, {name.lower() for name, _ in headers})
                message["headers"] = headers
            return send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")  # ids stay out of the labels
            self.metrics.requests.labels(scope["method"], template, str(status)).observe(seconds)
            access_log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "route": template,
                    "status": status,
                    "ms": round(seconds * 1000, 1),
                },
            )
            request_id.reset(token)
