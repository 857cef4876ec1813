"""A patient's chat turn in the database: lease the session, persist the question before the
engine is called, start the answer through the shared generation flow, persist the answer.
Writes per turn: the lease UPDATE, the question INSERT, and one statement that inserts the
answer and releases the lease."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

import anyio
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.chatformat import ControlTokenLeak, PromptTooLong
from services.core.db import utcnow
from services.gateway.context_cache import ContextCache
from services.gateway.errors import ApiError
from services.gateway.sessions import service as sessions
from services.gateway.sessions.service import title_from
from services.store.tables.sessions import ChatSession, Message

from .generation import Answer, GenerationFlow
from .history import History, HistoryEntry, context_of
from .runtime import ChatRuntime

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Held:
    """A question stored while a clinician has paused the model: no answer is generated."""

    session_id: uuid.UUID
    user_message_id: int


@dataclass(slots=True)
class Turnaround:
    """An answer in flight, with what is needed to persist its outcome."""

    session_id: uuid.UUID
    user_message_id: int
    answer_seq: int
    history: History
    answer: Answer


async def _history(
    db: AsyncSession, cache: ContextCache, session_id: uuid.UUID, newest_seq: int
) -> History:
    """The session's messages: from Redis when the cached copy ends at the newest seq (a
    copy that missed turns while Redis was down is refused), else from Postgres."""
    cached = await cache.get(session_id)
    if cached is not None and (cached[-1].seq if cached else 0) == newest_seq:
        return cached
    rows = await sessions.messages_of(db=db, session_id=session_id)
    history = [HistoryEntry(m.seq, m.role, m.content, m.status) for m in rows]  # type: ignore[arg-type]
    await cache.put(session_id, history)
    return history


async def release(db: AsyncSession, session_id: uuid.UUID) -> None:
    await db.execute(
        update(ChatSession).where(ChatSession.id == session_id).values(busy_until=None)
    )
    await db.commit()


async def begin_turn(
    *,
    flow: GenerationFlow,
    db: AsyncSession,
    cache: ContextCache,
    session: ChatSession,
    content: str | None,
    max_new_tokens: int | None,
) -> Turnaround | Held:
    """Start answering `content` (or, with None, answer the last question again); while a
    clinician has paused the model, store the question for them instead (`Held`).

    Raises ApiError with the right status when the engine fails before the first token;
    the question stays stored and the failure is recorded.
    """
    runtime = flow.runtime
    s = runtime.settings
    new_tokens = min(max_new_tokens or s.max_new_tokens, s.max_new_tokens)
    # Plain values: a rollback below expires ORM objects, and touching one then would
    # mean IO outside SQLAlchemy's async bridge.
    session_id = session.id
    title = title_from(content) if content and not session.title else None
    newest_seq, paused = await sessions.wait_for_lease(
        db=db, session_id=session_id, s=s, title=title
    )
    try:
        if paused:
            return await _hold(db, cache, session_id, newest_seq, content)
        await flow.guard()
        history = await _history(db, cache, session_id, newest_seq)
        if content is None:  # regenerate: forget the last answer, keep its question
            while history and history[-1].role == "assistant":
                dropped = history.pop()
                await db.execute(
                    delete(Message).where(
                        Message.session_id == session_id, Message.seq == dropped.seq
                    )
                )
            if not history:
                raise ApiError(409, "nothing_to_regenerate", "this session has no question yet")
        else:
            seq = history[-1].seq + 1 if history else 1
            history.append(HistoryEntry(seq, "user", content, "complete"))
        unrenderable: ApiError | None = None
        try:
            prompt = await flow.render(context_of(history), new_tokens)
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
            history[-1].status = "failed"
        user = history[-1]
        if content is not None:
            user_id = (
                await db.execute(
                    insert(Message)
                    .values(
                        session_id=session_id,
                        seq=user.seq,
                        role="user",
                        content=content,
                        status=user.status,
                        error=unrenderable.message if unrenderable else None,
                    )
                    .returning(Message.id)
                )
            ).scalar_one()
        else:
            user_id = (
                await db.execute(
                    select(Message.id).where(
                        Message.session_id == session_id, Message.seq == user.seq
                    )
                )
            ).scalar_one()
        await db.commit()  # the question is durable before the engine is called
        await cache.put(session_id, history)
        if unrenderable is not None:
            raise unrenderable

        async def failed(answer: Answer) -> None:
            turn = Turnaround(session_id, user_id, user.seq + 1, history, answer)
            await finish_turn(runtime=runtime, db=db, cache=cache, turn=turn)

        answer = await flow.start(
            prompt, new_tokens, emergency_text=user.content, live=session_id, on_failure=failed
        )
        return Turnaround(session_id, user_id, user.seq + 1, history, answer)
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


async def _hold(
    db: AsyncSession,
    cache: ContextCache,
    session_id: uuid.UUID,
    newest_seq: int,
    content: str | None,
) -> Held:
    if content is None:
        raise ApiError(
            409,
            "model_paused",
            "a clinician is handling this conversation: the model is paused until the"
            " hand-off ends",
        )
    user_id = (
        await db.execute(
            insert(Message)
            .values(session_id=session_id, seq=newest_seq + 1, role="user", content=content)
            .returning(Message.id)
        )
    ).scalar_one()
    await db.execute(
        update(ChatSession)
        .where(ChatSession.id == session_id)
        .values(busy_until=None, updated_at=utcnow())
    )
    await db.commit()
    await cache.drop(session_id)  # rebuilt from Postgres on the next turn
    return Held(session_id, user_id)


async def finish_turn(
    *,
    runtime: ChatRuntime,
    db: AsyncSession,
    cache: ContextCache,
    turn: Turnaround,
) -> Message:
    """Store the answer as it ended (complete, stopped with its partial text, or failed)
    and release the session's lease, in one statement."""
    runtime.live.pop(turn.session_id, None)
    a = turn.answer
    content = "".join(a.parts)
    fields: dict[str, Any] = {
        "session_id": turn.session_id,
        "seq": turn.answer_seq,
        "role": "assistant",
        "content": content,
        "status": a.status,
        "finish_reason": a.finish_reason,
        "error": a.error,
        "prompt_tokens": a.prompt_tokens,
        "completion_tokens": a.completion_tokens,
        "turns_used": a.prompt.turns_kept,
        "model": a.model,
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
    turn.history.append(HistoryEntry(turn.answer_seq, "assistant", content, a.status))
    await cache.put(turn.session_id, turn.history)
    return Message(id=message_id, **fields)
