"""Typed engine failures; the chat layer maps each to one HTTP answer."""

from __future__ import annotations


class EngineError(Exception):
    """Base: `status` is what the gateway answers, `code` goes into the error body."""

    status = 502
    code = "engine_error"
    retryable = False

    def __init__(self, message: str, *, retry_after_s: int | None = None):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class EngineUnavailable(EngineError):
    """Down, refusing connections, or answering 5xx."""

    status = 503
    code = "engine_unavailable"
    retryable = True


class EngineOverloaded(EngineError):
    """TGI's 429 / `overloaded`: more requests than --max-concurrent-requests."""

    status = 503
    code = "engine_overloaded"
    retryable = True


class EngineTimeout(EngineError):
    status = 504
    code = "engine_timeout"


class EngineRejected(EngineError):
    """The engine refused the request as invalid (TGI 422 `validation`). The gateway built
    that request, so this is a gateway/engine mismatch, not the caller's fault."""

    status = 502
    code = "engine_rejected"


class EngineGenerationFailed(EngineError):
    """TGI 424 `generation`, an error event mid-stream, or a stream cut short."""

    code = "engine_generation_failed"


class EngineProtocolError(EngineError):
    """An answer that is not what the protocol promises (garbage, missing fields)."""

    code = "engine_bad_response"
