"""The patient's side of a hand-off, in their own session: ask for a person, see where the
case stands, end it, and hear the clinician live (SSE)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from services.gateway.db import Db
from services.gateway.deps import RedisClient
from services.gateway.error_schemas import error_responses
from services.gateway.openapi_sse import event_stream
from services.gateway.sessions.dependencies import OwnedSession
from services.gateway.sse import sse_response

from . import live, service
from .dependencies import Escalate
from .escalation import Trigger
from .events import SessionLiveEvent
from .schemas import Handoff

router = APIRouter(prefix="/api/sessions", tags=["hand-off"])
_ERRORS = error_responses(401, 403, 404)
LIVE = event_stream(
    SessionLiveEvent,
    description="Server-sent events while a person is involved: `handoff` (the case's state)"
    " and `message` (a clinician's reply); comments keep the connection open.",
)


@router.post("/{session_id}/handoff", status_code=201, responses=_ERRORS)
async def ask_for_clinician(session: OwnedSession, db: Db, escalate: Escalate) -> Handoff:
    """The patient asks for a person (the chat's "talk to a clinician" button). Guests too:
    the clinician answers in this session, which the guest's browser keeps."""
    return await escalate.open(
        db=db,
        session_id=session.id,
        patient_id=session.user_id,
        trigger=Trigger("patient_request"),
    )


@router.get("/{session_id}/handoff", responses=_ERRORS)
async def read_handoff(session: OwnedSession, db: Db) -> Handoff | None:
    """The session's hand-off, if a case is active (null otherwise)."""
    case = await service.active_case(db=db, session_id=session.id)
    return None if case is None else await service.handoff_of(db=db, case=case)


@router.delete("/{session_id}/handoff", responses=_ERRORS)
async def end_handoff(session: OwnedSession, db: Db, redis: RedisClient) -> Handoff | None:
    """The patient ends the hand-off: the case closes and the model answers again."""
    case = await service.active_case(db=db, session_id=session.id)
    if case is None:
        return None
    await service.close(db=db, case=case, by="patient")
    handoff = await service.handoff_of(db=db, case=case)
    await db.commit()
    await live.tell_patient(redis, session.id, "handoff", handoff)
    return handoff


@router.get(
    "/{session_id}/events",
    response_class=StreamingResponse,
    responses={200: LIVE, **_ERRORS},
)
async def session_events(session: OwnedSession, redis: RedisClient) -> StreamingResponse:
    """A clinician's replies and the hand-off's state as they happen (stored as well: a
    reconnecting chat reads the session again)."""
    return sse_response(live.patient_events(redis, session.id))
