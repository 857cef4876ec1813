"""A chat turn: lease the session, persist the question, render the prompt with the format
module, stream the engine's answer, persist it. Writes per turn: the lease UPDATE, the
question INSERT, and one statement that inserts the answer and releases the lease."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.chatformat import (
    ChatFormat,
    ControlTokenLeak,
    Prompt,
    PromptTooLong,
    Turn,
    prompt_budget,
)
from services.core.db import utcnow
from services.gateway.config import GatewaySettings
from services.gateway.context_cache import ContextCache
from services.gateway.engine.canary import CanaryResult, check_tokenization
from services.gateway.engine.client import (
    EngineClient,
    EngineInfo,
    Finish,
    Generation,
    GenerationParams,
    Token,
)
from services.gateway.engine.errors import EngineError, user_message
from services.gateway.errors import ApiError
from services.gateway.observability import request_id
from services.gateway.serving.service import ServingState
from services.gateway.sessions import service as sessions
from services.store.tables.sessions import ChatSession, Message
from services.gateway.sessions.service import title_from

log = logging.getLogger(__name__)
CONTEXT_STATUSES = ("complete", "stopped")  # a failed answer is not part of the dialogue


class ChatRuntime:
    """Per-process chat machinery: engine client, bound format, live generations."""

    def __init__(
        self,
        settings: GatewaySettings,
        engine: EngineClient,
        chat_format: ChatFormat,
        serving: ServingState,
    ):
        self.settings = settings
        self.engine = engine
        self.format = chat_format
        self.serving = serving  # which model answers (the admin's choice)
        self.live: dict[uuid.UUID, Generation] = {}
        self._info: EngineInfo | None = None
        self.canary: CanaryResult | None = None

    async def check_engine(self) -> CanaryResult:
        """Compare the engine's tokenization of a canary prompt with ours (again, until it
        could be asked)."""
        if self.canary is None or self.canary.state == "unreachable":
            self.canary = await check_tokenization(self.engine, self.format)
        return self.canary

    async def guard(self) -> None:
        """Refuse to serve through an engine that would see different tokens than we built."""
        canary = await self.check_engine()
        if canary.blocks_serving and self.settings.engine_tokenization_check == "enforce":
            # What to change is for operators (the log, /readyz), not for patients.
            log.error("chat refused, engine tokenization mismatch: %s", canary.detail)
            rid = request_id.get()
            raise ApiError(
                503,
                "engine_mismatch",
                "the model service is misconfigured; answers are paused until an operator"
                f" fixes it (request id: {rid})",
                headers={"Retry-After": "60"},
            )

    async def budget(self, max_new_tokens: int) -> int:
        """Prompt tokens allowed: the engine's own limits, or the settings' while the engine
        cannot be asked (the generation call then reports the engine's state properly)."""
        if self._info is None:
            with contextlib.suppress(EngineError):
                self._info = await self.engine.info()
        s = self.settings
        max_total = (self._info and self._info.max_total_tokens) or s.engine_max_total_tokens
        max_input = (self._info and self._info.max_input_tokens) or s.engine_max_input_tokens
        return prompt_budget(max_total, max_new_tokens, max_input)

    def params(
        self,
        max_new_tokens: int,
        *,
        temperature: float | None = None,
        top_p: float | None = None,
        stop: list[str] | None = None,
        seed: int | None = None,
        model: str | None = None,
    ) -> GenerationParams:
        """The profile's generation defaults (DISC-MedLLM's generation_config), with what an
        integrator asked for on top. top_p=1 means "no nucleus cut", i.e. not set."""
        g = self.format.profile.generation
        return GenerationParams(
            max_new_tokens=max_new_tokens,
            temperature=g.temperature if temperature is None else temperature,
            top_k=g.top_k,
            top_p=g.top_p if top_p is None else (None if top_p >= 1 else top_p),
            repetition_penalty=g.repetition_penalty,
            do_sample=g.do_sample if temperature is None else temperature > 0,
            stop=stop or [],
            seed=seed,
            model=model,
        )

    def stop(self, session_id: uuid.UUID) -> bool:
        generation = self.live.get(session_id)
        if generation is None:
            return False
        generation.cancel()
        return True


@dataclass
class Turnaround:
    """A generation in flight, with what is needed to persist its outcome."""

    session_id: uuid.UUID
    user_message_id: int
    answer_seq: int
    prompt: Prompt
    generation: Generation
    events: AsyncIterator[Token | Finish]
    history: list[dict[str, Any]]
    model: str
    first: Token | Finish | None = None
    parts: list[str] = field(default_factory=list)


async def _wait_for_lease(
    db: AsyncSession, session_id: uuid.UUID, s: GatewaySettings, title: str | None
) -> int:
    """Posts to one session run one at a time, across gateway replicas. Returns the
    session's newest message seq."""
    deadline = asyncio.get_running_loop().time() + s.session_lock_wait_s
    while True:
        newest = await sessions.try_lease(
            db=db, session_id=session_id, lease_s=s.session_lease_s, title=title
        )
        if newest is not None:
            await db.commit()
            return newest
        await db.rollback()
        if asyncio.get_running_loop().time() > deadline:
            raise ApiError(
                409,
                "session_busy",
                "another message of this session is still being answered",
                headers={"Retry-After": "5"},
            )
        await asyncio.sleep(0.05)


async def _history(
    db: AsyncSession, cache: ContextCache, session_id: uuid.UUID, newest_seq: int
) -> list[dict[str, Any]]:
    """The session's messages: from Redis when the cached copy ends at the newest seq (a
    copy that missed turns while Redis was down is refused), else from Postgres."""
    cached = await cache.get(session_id)
    if cached is not None and (cached[-1]["seq"] if cached else 0) == newest_seq:
        return cached
    rows = await sessions.messages_of(db=db, session_id=session_id)
    history = [
        {"seq": m.seq, "role": m.role, "content": m.content, "status": m.status} for m in rows
    ]
    await cache.put(session_id, history)
    return history


def _context(history: list[dict[str, Any]]) -> list[Turn]:
    return [
        Turn(role=h["role"], content=h["content"])
        for h in history
        if (h["role"] == "user" and h["status"] != "failed")
        or (h["status"] in CONTEXT_STATUSES and h["content"])
    ]


async def release(db: AsyncSession, session_id: uuid.UUID) -> None:
    await db.execute(
        update(ChatSession).where(ChatSession.id == session_id).values(busy_until=None)
    )
    await db.commit()


async def begin_turn(
    *,
    runtime: ChatRuntime,
    db: AsyncSession,
    cache: ContextCache,
    session: ChatSession,
    content: str | None,
    max_new_tokens: int | None,
) -> Turnaround:
    """Start answering `content` (or, with None, answer the last question again).

    Raises ApiError with the right status when the engine fails before the first token;
    the question stays stored and the failure is recorded.
    """
    await runtime.guard()
    s = runtime.settings
    new_tokens = min(max_new_tokens or s.max_new_tokens, s.max_new_tokens)
    # Plain values: a rollback below expires ORM objects, and touching one then would
    # mean IO outside SQLAlchemy's async bridge.
    session_id = session.id
    title = title_from(content) if content and not session.title else None
    newest_seq = await _wait_for_lease(db, session_id, s, title)
    try:
        history = await _history(db, cache, session_id, newest_seq)
        if content is None:  # regenerate: forget the last answer, keep its question
            while history and history[-1]["role"] == "assistant":
                dropped = history.pop()
                await db.execute(
                    delete(Message).where(
                        Message.session_id == session_id, Message.seq == dropped["seq"]
                    )
                )
            if not history:
                raise ApiError(409, "nothing_to_regenerate", "this session has no question yet")
        else:
            history.append(
                {
                    "seq": history[-1]["seq"] + 1 if history else 1,
                    "role": "user",
                    "content": content,
                    "status": "complete",
                }
            )
        unrenderable: ApiError | None = None
        try:
            budget = await runtime.budget(new_tokens)
            prompt = runtime.format.render_prompt(_context(history), budget)
        except PromptTooLong as exc:
            raise ApiError(413, "message_too_long", str(exc), "content") from exc
        except ControlTokenLeak as exc:
            # Kept (the patient's words are never lost) but out of the dialogue from now on.
            log.warning("a message could not be rendered: %s", exc)
            unrenderable = ApiError(
                422,
                "message_unrenderable",
                "this message cannot be sent to the model as written (it contains characters"
                " the model's tokenizer cannot represent safely); it was saved: please rephrase",
                "content",
            )
            if content is None:
                raise unrenderable from exc
            history[-1]["status"] = "failed"
        user = history[-1]
        if content is not None:
            user_id = (
                await db.execute(
                    insert(Message)
                    .values(
                        session_id=session_id,
                        seq=user["seq"],
                        role="user",
                        content=content,
                        status=user["status"],
                        error=unrenderable.message if unrenderable else None,
                    )
                    .returning(Message.id)
                )
            ).scalar_one()
        else:
            user_id = (
                await db.execute(
                    select(Message.id).where(
                        Message.session_id == session_id, Message.seq == user["seq"]
                    )
                )
            ).scalar_one()
        await db.commit()  # the question is durable before the engine is called
        await cache.put(session_id, history)
        if unrenderable is not None:
            raise unrenderable
        served = await runtime.serving.current()
        generation = runtime.engine.generate(
            prompt.text, runtime.params(new_tokens, model=served.engine_ref)
        )
        turn = Turnaround(
            session_id,
            user_id,
            user["seq"] + 1,
            prompt,
            generation,
            aiter(generation),
            history,
            served.name,
        )
        runtime.live[session_id] = generation
        try:
            turn.first = await anext(turn.events)
        except StopAsyncIteration:
            turn.first = None
        except EngineError as exc:
            said = user_message(exc)  # plain words and the request id; the detail is logged
            await finish_turn(
                runtime=runtime, db=db, cache=cache, turn=turn, status="failed", error=said
            )
            raise ApiError(exc.status, exc.code, said, headers=_retry_after(exc)) from exc
        return turn
    except BaseException:
        # Nothing half-done survives (a regenerate's DELETE is rolled back) and the lease is
        # released at once rather than left to expire.
        left = runtime.live.pop(session_id, None)
        if left is not None:
            left.cancel()
        with anyio.CancelScope(shield=True):
            await db.rollback()
            await release(db, session_id)
        raise


def _retry_after(exc: EngineError) -> dict[str, str]:
    if exc.status == 503:
        return {"Retry-After": str(exc.retry_after_s or 5)}
    return {}


async def finish_turn(
    *,
    runtime: ChatRuntime,
    db: AsyncSession,
    cache: ContextCache,
    turn: Turnaround,
    status: str,
    error: str | None = None,
    completion_tokens: int | None = None,
    finish_reason: str | None = None,
) -> Message:
    """Store the answer (complete, stopped with its partial text, or failed) and release
    the session's lease, in one statement."""
    runtime.live.pop(turn.session_id, None)
    content = "".join(turn.parts)
    fields: dict[str, Any] = {
        "session_id": turn.session_id,
        "seq": turn.answer_seq,
        "role": "assistant",
        "content": content,
        "status": status,
        "finish_reason": finish_reason,
        "error": error,
        "prompt_tokens": len(turn.prompt.input_ids),
        "completion_tokens": completion_tokens,
        "turns_used": turn.prompt.turns_kept,
        "model": turn.model,
        "created_at": utcnow(),
    }
    answer = insert(Message).values(fields).returning(Message.id).cte("answer")
    message_id = (
        await db.execute(
            update(ChatSession)
            .add_cte(answer)
            .where(ChatSession.id == turn.session_id)
            .values(busy_until=None, updated_at=fields["created_at"])
            .returning(select(answer.c.id).scalar_subquery())
        )
    ).scalar_one()
    await db.commit()
    turn.history.append(
        {"seq": turn.answer_seq, "role": "assistant", "content": content, "status": status}
    )
    await cache.put(turn.session_id, turn.history)
    return Message(id=message_id, **fields)


async def events_of(turn: Turnaround) -> AsyncIterator[Token | Finish]:
    """The turn's events, the one already read first."""
    if turn.first is not None:
        yield turn.first
    async for event in turn.events:
        yield event
