"""The patient chat: answer a question (or the last one again) through the shared generation
flow, whole or as server-sent events (chat/events.py), and store the answer however it ends:
complete, failed mid-stream, stopped, or cut because the client left."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.safety import detect_prescription, disclaimer
from services.gateway.cases.escalation import Escalation, Trigger, trigger_of
from services.gateway.cases.schemas import Handoff
from services.gateway.context_cache import ContextCache
from services.gateway.errors import ApiError, Json
from services.gateway.notices import Emergency, Prescription
from services.gateway.observability import Metrics
from services.gateway.sessions.schemas import MessageOut
from services.store.tables.sessions import ChatSession, Message

from .generation import GenerationFlow, emergency_notice
from .runtime import ChatRuntime
from .schemas import ChatAnswer, HeldForClinician, Usage
from .turns import Held, Turnaround, begin_turn, finish_turn

log = logging.getLogger(__name__)


def _prescription(answer: str) -> Prescription | None:
    notice = detect_prescription(answer)
    return Prescription.model_validate(notice.model_dump()) if notice else None


def _sse(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


@dataclass
class Answering:
    """One answer in flight and what finishing it needs."""

    flow: GenerationFlow
    sessionmaker: async_sessionmaker[AsyncSession]
    cache: ContextCache
    turn: Turnaround
    lang: str
    handoff: Handoff | None = None

    async def save(self) -> Message:
        """Store the answer however it ended: completion, engine failure, explicit stop, or
        a client that left (then the caller is being cancelled: the save is shielded)."""
        answer = self.turn.answer
        answer.cancel()
        with anyio.CancelScope(shield=True):
            async with self.sessionmaker() as db:
                message = await finish_turn(
                    runtime=self.flow.runtime, db=db, cache=self.cache, turn=self.turn
                )
        answer.finished()
        return message

    def body(self, message: Message) -> ChatAnswer:
        a = self.turn.answer
        return ChatAnswer(
            message=MessageOut.model_validate(message, from_attributes=True),
            user_message_id=self.turn.user_message_id,
            turns_used=a.prompt.turns_kept,
            usage=Usage(
                prompt_tokens=a.prompt_tokens,
                completion_tokens=message.completion_tokens or len(a.parts),
            ),
            disclaimer=disclaimer(self.lang),
            emergency=Emergency.model_validate(a.notice.model_dump()) if a.notice else None,
            handoff=self.handoff,
            prescription=_prescription(message.content),
        )

    async def whole(self) -> ChatAnswer:
        try:
            async for _ in self.turn.answer.texts():
                pass
        finally:
            message = await self.save()
        if self.turn.answer.error is not None:
            raise ApiError(502, "engine_generation_failed", self.turn.answer.error)
        return self.body(message)

    async def events(self) -> AsyncIterator[bytes]:
        """`meta`, `delta`…, then `done` or `error` (chat/events.py)."""
        metrics = self.flow.metrics
        metrics.active_streams.inc()
        try:
            turn, a = self.turn, self.turn.answer
            yield _sse(
                "meta",
                {
                    "session_id": str(turn.session_id),
                    "user_message_id": turn.user_message_id,
                    "turns_used": a.prompt.turns_kept,
                    "prompt_tokens": a.prompt_tokens,
                    "emergency": a.notice.model_dump() if a.notice else None,
                    "handoff": self.handoff.model_dump(mode="json") if self.handoff else None,
                },
            )
            try:
                async for text in a.texts():
                    yield b'event: delta\ndata: {"text":' + orjson.dumps(text) + b"}\n\n"
            finally:
                message = await self.save()
            if a.error is None:
                yield _sse("done", self.body(message).model_dump(mode="json"))
            else:
                out = MessageOut.model_validate(message, from_attributes=True)
                yield _sse(
                    "error",
                    {
                        "error": {"code": "engine_generation_failed", "message": a.error},
                        "message": out.model_dump(mode="json"),
                    },
                )
        finally:
            metrics.active_streams.dec()


@dataclass(frozen=True)
class Waiting:
    """A question stored for the clinician who paused the model: no answer is generated."""

    session_id: uuid.UUID
    held: HeldForClinician

    async def whole(self) -> Json:
        return Json(self.held.model_dump(mode="json"), status_code=202)

    async def events(self) -> AsyncIterator[bytes]:
        h = self.held
        yield _sse(
            "meta",
            {
                "session_id": str(self.session_id),
                "user_message_id": h.user_message_id,
                "turns_used": 0,
                "prompt_tokens": 0,
                "emergency": h.emergency.model_dump() if h.emergency else None,
                "handoff": h.handoff.model_dump(mode="json"),
            },
        )
        yield _sse("held", h.handoff.model_dump(mode="json"))


@dataclass(frozen=True)
class PatientChat:
    """What a chat turn needs beyond the request's own database session."""

    runtime: ChatRuntime
    metrics: Metrics
    sessionmaker: async_sessionmaker[AsyncSession]
    cache: ContextCache
    escalation: Escalation

    async def start(
        self,
        *,
        db: AsyncSession,
        session: ChatSession,
        content: str | None,
        max_new_tokens: int | None,
        lang: str,
    ) -> Answering | Waiting:
        """Store the question (content None: answer the last one again) and start the
        answer; errors before the first token are raised as ApiError, the question kept.
        A question that calls for a person (the emergency rules, "转人工") opens a case; while
        a clinician has paused the model, the question waits for them instead."""
        flow = GenerationFlow(self.runtime, self.metrics, "chat")
        session_id, patient_id = session.id, session.user_id
        turn = await begin_turn(
            flow=flow,
            db=db,
            cache=self.cache,
            session=session,
            content=content,
            max_new_tokens=max_new_tokens,
        )
        if isinstance(turn, Held):
            return await self._held(db, turn, patient_id, content or "")
        answering = Answering(flow, self.sessionmaker, self.cache, turn, lang)
        trigger = trigger_of(turn.answer.notice, content)
        if trigger is not None:
            try:
                answering.handoff = await self.escalation.open(
                    db=db,
                    session_id=session_id,
                    patient_id=patient_id,
                    trigger=trigger,
                    message_id=turn.user_message_id,
                )
            except Exception:
                # The answer is under way and holds the session's lease: it goes on (with
                # the emergency notice, which needs no case); the lost case is an operator's
                # alarm, never the patient's error.
                log.exception(
                    "could not open a case (%s) for session %s", trigger.reason, session_id
                )
                await db.rollback()
        return answering

    async def _held(
        self, db: AsyncSession, held: Held, patient_id: uuid.UUID, content: str
    ) -> Waiting:
        notice = emergency_notice(content)
        trigger = trigger_of(notice, content) or Trigger("patient_request")
        handoff = await self.escalation.open(
            db=db,
            session_id=held.session_id,
            patient_id=patient_id,
            trigger=trigger,
            message_id=held.user_message_id,
        )
        emergency = Emergency.model_validate(notice.model_dump()) if notice else None
        return Waiting(
            held.session_id,
            HeldForClinician(
                user_message_id=held.user_message_id, handoff=handoff, emergency=emergency
            ),
        )
