"""Typed engine failures; the chat layer maps each to one HTTP answer.

Each carries two texts. `detail` says what went wrong for operators: it may name the
engine's address, a network exception or the engine's own words (an upstream error body,
a tokenizer's complaint quoting generated text). `public` is a plain sentence for patients
and integrators. `str(exc)` is the public one, so an error passed on without thought never
shows the engine's internals; `user_message(exc)` is what an API answer or a stored failed
answer says: the public sentence with the request id, the detail going to the log.
"""

from __future__ import annotations

import logging

from services.gateway.observability import request_id

log = logging.getLogger(__name__)

DETAIL_LOGGED_CHARS = 500  # an engine's error body can be long (and quote generated text)


class EngineError(Exception):
    """Base: `status` is what the gateway answers, `code` goes into the error body."""

    status = 502
    code = "engine_error"
    retryable = False
    public = "the model service failed to answer; please try again"

    def __init__(self, detail: str, *, retry_after_s: int | None = None):
        super().__init__(detail)
        self.detail = detail
        self.retry_after_s = retry_after_s
        self.logged = False

    def __str__(self) -> str:
        return self.public


class EngineUnavailable(EngineError):
    """Down, refusing connections, or answering 5xx."""

    status = 503
    code = "engine_unavailable"
    retryable = True
    public = "the model service is unavailable; please try again shortly"


class EngineOverloaded(EngineError):
    """TGI's 429 / `overloaded`: more requests than --max-concurrent-requests."""

    status = 503
    code = "engine_overloaded"
    retryable = True
    public = "the model service is busy; please try again shortly"


class EngineTimeout(EngineError):
    status = 504
    code = "engine_timeout"
    public = "the model service did not answer in time; please try again"


class EngineRejected(EngineError):
    """The engine refused the request as invalid (TGI 422 `validation`). The gateway built
    that request, so this is a gateway/engine mismatch, not the caller's fault."""

    status = 502
    code = "engine_rejected"
    public = "the model service could not take this request; please try again later"


class EngineGenerationFailed(EngineError):
    """TGI 424 `generation`, an error event mid-stream, or a stream cut short."""

    code = "engine_generation_failed"
    public = "the model service stopped before finishing the answer; please try again"


class EngineProtocolError(EngineError):
    """An answer that is not what the protocol promises (garbage, missing fields)."""

    code = "engine_bad_response"
    public = "the model service sent an answer the gateway cannot read; please try again later"


def user_message(exc: EngineError) -> str:
    """What a patient or an integrator is told: the public sentence and the request id (to
    quote to support). The detail goes to the log, at warning level, once per error: cut
    to DETAIL_LOGGED_CHARS (an engine's words may quote generated text), and the JSON log
    formatter redacts personal data in it like in every line."""
    if not exc.logged:
        exc.logged = True
        detail = exc.detail
        if len(detail) > DETAIL_LOGGED_CHARS:
            detail = detail[:DETAIL_LOGGED_CHARS] + "…"
        log.warning("engine failure %s: %s", exc.code, detail, extra={"engine_error": exc.code})
    rid = request_id.get()
    return exc.public if rid == "-" else f"{exc.public} (request id: {rid})"
