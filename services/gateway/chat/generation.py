"""One generation flow, shared by the patient chat and the OpenAI-compatible API.

Both routes walk the same chain, in this order:

1. `guard()`: refuse to serve through an engine that tokenizes differently from us;
2. `render()`: the prompt within the engine's budget (the caller maps `PromptTooLong` and
   `ControlTokenLeak` to what they mean for its clients: the patient chat keeps the
   message, the OpenAI API refuses the request);
3. `start()`: choose the serving model, build the parameters, send the request, and run the
   emergency rules on the user's words while the engine prepares its first event; a failure
   before that event becomes an `ApiError` (with Retry-After when the engine is busy) after
   `on_failure` has run (the patient chat stores the failure there);
4. `Answer.texts()`: the answer's text pieces, with its outcome filled in as the engine
   reports it; `Answer.finished()` records the metrics once it is over.

What the routes do with the pieces (SSE events, OpenAI chunks, persistence) stays theirs.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from services.core.chatformat import Prompt, Turn
from services.core.safety import EmergencyNotice, detect_emergency
from services.gateway.engine import Finish, Generation, Token
from services.gateway.engine.errors import EngineError, user_message
from services.gateway.errors import ApiError
from services.gateway.observability import Metrics

from .runtime import ChatRuntime

Api = Literal["chat", "openai"]
Status = Literal["complete", "stopped", "failed"]


@functools.lru_cache(maxsize=2048)
def _notice_of(text: str) -> EmergencyNotice | None:
    return detect_emergency(text)


def emergency_notice(text: str) -> EmergencyNotice | None:
    """The emergency rules on a user's words, remembered for texts seen before (OpenAI-API
    clients resend the same question with every retry and every sampled variant). The rules
    are the process's default set, loaded once; the notice is never modified."""
    return _notice_of(text) if len(text) <= 2048 else detect_emergency(text)


def retry_headers(exc: EngineError) -> dict[str, str]:
    """Retry-After for an engine that is busy or starting (503), none otherwise."""
    return {"Retry-After": str(exc.retry_after_s or 5)} if exc.status == 503 else {}


@dataclass(frozen=True, slots=True)
class Sampling:
    """What an integrator may ask for on top of the profile's generation defaults."""

    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] | None = None
    seed: int | None = None


@dataclass(slots=True)
class Answer:
    """One answer in flight: its first event (already read), the rest, and how it ended."""

    api: Api
    metrics: Metrics
    generation: Generation  # its first event already read (the engine answered)
    prompt: Prompt
    model: str  # the served model's name, as the API reports it
    notice: EmergencyNotice | None
    started: float
    parts: list[str] = field(default_factory=list)
    status: Status = "stopped"  # until the engine's final event says otherwise
    error: str | None = None  # the user-facing sentence of a failure
    error_code: str | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None

    @property
    def prompt_tokens(self) -> int:
        return len(self.prompt.input_ids)

    @property
    def completion(self) -> int:
        """Tokens generated: the engine's count, else the pieces received."""
        return self.completion_tokens or len(self.parts)

    async def texts(self) -> AsyncIterator[str]:
        """The answer's text pieces. A failure mid-stream ends them and is kept in
        `error`/`error_code`; a stop or a client that left leaves `status` "stopped".
        (The streaming routes iterate `generation` themselves, the same way, with one
        generator fewer per token.)"""
        parts = self.parts
        try:
            async for event in self.generation:
                if isinstance(event, Token):
                    parts.append(event.text)
                    yield event.text
                else:
                    self.complete(event)
        except EngineError as exc:
            self.fail(exc)

    def complete(self, event: Finish) -> None:
        """The engine's final event."""
        self.status = "complete"
        self.completion_tokens = event.completion_tokens
        self.finish_reason = event.reason

    def fail(self, exc: EngineError) -> None:
        self.status, self.error, self.error_code = "failed", user_message(exc), exc.code

    def cancel(self) -> None:
        """Close the upstream request (the engine frees the slot at once)."""
        self.generation.cancel()

    def finished(self) -> None:
        """Metrics of an answer that is over, however it ended."""
        m, tokens = self.metrics, self.completion
        m.tokens.labels(self.api).inc(tokens)
        if (seconds := time.perf_counter() - self.started) > 0 and tokens:
            m.tokens_per_s.labels(self.api).observe(tokens / seconds)
        if self.error_code is not None:
            m.engine_errors.labels(self.error_code).inc()


class GenerationFlow:
    """The chain of one request; `started` is when the request began (TTFT counts from it)."""

    def __init__(self, runtime: ChatRuntime, metrics: Metrics, api: Api):
        self.runtime = runtime
        self.metrics = metrics
        self.api = api
        self.started = time.perf_counter()

    async def guard(self) -> None:
        try:
            await self.runtime.guard()
        except ApiError as exc:  # engine_mismatch: counted like the engine's own failures
            self.metrics.engine_errors.labels(exc.code).inc()
            raise

    async def render(
        self, turns: Sequence[Turn], max_new_tokens: int, system: str | None = None
    ) -> Prompt:
        """The prompt within the engine's budget. Raises PromptTooLong, ControlTokenLeak."""
        budget = await self.runtime.budget(max_new_tokens)
        return self.runtime.format.render_prompt(turns, budget, system)

    async def start(
        self,
        prompt: Prompt,
        max_new_tokens: int,
        *,
        emergency_text: str,
        model: str | None = None,
        sampling: Sampling | None = None,
        live: uuid.UUID | None = None,
        on_failure: Callable[[Answer], Awaitable[None]] | None = None,
    ) -> Answer:
        """Send the prompt and wait for the engine's first event.

        `model`: the model an API call names (None: the one serving patients). `live`: the
        session whose generation `ChatRuntime.stop` may cancel. `on_failure` runs when the
        engine fails before its first event, before the ApiError is raised.
        """
        rt = self.runtime
        if model is None:
            served = await rt.serving.current()
        else:
            served = await rt.serving.for_request(model, rt.settings, rt.engine, rt.format)
        s = sampling or Sampling()
        params = rt.params(
            max_new_tokens,
            temperature=s.temperature,
            top_p=s.top_p,
            stop=s.stop,
            seed=s.seed,
            model=served.engine_ref,
        )
        generation = rt.engine.generate(prompt.text, params)
        if live is not None:
            rt.live[live] = generation
        answer = Answer(self.api, self.metrics, generation, prompt, served.name, None, self.started)
        try:
            # The emergency rules run while the engine prepares its first event.
            answer.notice = await generation.first_event_while(
                lambda: emergency_notice(emergency_text)
            )
        except EngineError as exc:
            self.metrics.engine_errors.labels(exc.code).inc()
            said = user_message(exc)  # plain words and the request id; the detail is logged
            answer.status, answer.error, answer.error_code = "failed", said, exc.code
            if on_failure is not None:
                await on_failure(answer)
            raise ApiError(exc.status, exc.code, said, headers=retry_headers(exc)) from exc
        self.metrics.ttft.labels(self.api).observe(time.perf_counter() - self.started)
        return answer
