"""Cases over REST, for the clinician console and for hospital systems (a clinician's or an
admin's API key): the queue, a case with its conversation, claim, pause, reply, close, the
AI summary. Every read and every action is audited (who, what, when; never the content).
The patient's side (ask for a person, end the hand-off, hear replies live) is under
/api/sessions."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from services.gateway.audit.dependencies import Audit
from services.gateway.auth.dependencies import AdminPrincipal
from services.gateway.db import Db
from services.gateway.deps import RedisClient, Settings
from services.gateway.error_schemas import error_responses
from services.gateway.errors import NotFound
from services.gateway.sessions import service as sessions
from services.gateway.sessions.schemas import MessageOut
from services.store.tables.cases import Case
from services.store.tables.sessions import ChatSession

from . import live, service
from .dependencies import ClinicianPrincipal, Escalate, VisibleCase
from .escalation import Trigger
from .schemas import (
    CaseCreate,
    CaseDetail,
    CaseOut,
    CasePage,
    CaseSummary,
    ClaimRequest,
    PauseRequest,
    ReplyCreate,
)
from .summary import Summarizer

router = APIRouter(prefix="/api/cases", tags=["cases"])
_ERRORS = error_responses(401, 403, 404, 409)
Which = Literal["active", "open", "claimed", "answered", "closed", "all"]
_STATES: dict[str, tuple[str, ...]] = {
    "active": ("open", "claimed", "answered"),
    "all": ("open", "claimed", "answered", "closed"),
}


async def _out(db: Db, case: Case, principal: ClinicianPrincipal) -> CaseOut:
    return (await service.cases_out(db=db, cases=[case], principal=principal))[0]


async def _done(
    action: str, case: Case, principal: ClinicianPrincipal, trail: Audit, db: Db, redis: RedisClient
) -> CaseOut:
    """Audit and commit an action on a case, tell the patient's open chat, answer the case."""
    trail(action, target_type="case", target_id=case.id, subject_id=case.patient_id, by=principal)
    await db.commit()
    await live.tell_patient(
        redis, case.session_id, "handoff", await service.handoff_of(db=db, case=case)
    )
    return await _out(db, case, principal)


@router.get("", responses=error_responses(401, 403))
async def list_cases(
    principal: ClinicianPrincipal,
    db: Db,
    state: Which = "active",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> CasePage:
    """The queue: urgent first, then the oldest. Open cases and the caller's own."""
    rows, more = await service.queue(
        db=db, principal=principal, states=_STATES.get(state, (state,)), limit=limit, offset=offset
    )
    return CasePage(
        data=await service.cases_out(db=db, cases=rows, principal=principal), has_more=more
    )


@router.post("", status_code=201, responses=error_responses(401, 403, 404))
async def escalate_session(
    body: CaseCreate, principal: AdminPrincipal, trail: Audit, db: Db, escalate: Escalate
) -> CaseOut:
    """An admin sends a session to the clinicians."""
    session = await db.get(ChatSession, body.session_id)
    if session is None:
        raise NotFound("session")
    await escalate.open(
        db=db,
        session_id=session.id,
        patient_id=session.user_id,
        trigger=Trigger("admin", body.urgent),
    )
    case = await service.active_case(db=db, session_id=body.session_id)
    assert case is not None
    trail(
        "case.escalate",
        target_type="case",
        target_id=case.id,
        subject_id=case.patient_id,
        by=principal,
    )
    await db.commit()
    return await _out(db, case, principal)


@router.get("/{case_id}", responses=_ERRORS)
async def read_case(
    case: VisibleCase, principal: ClinicianPrincipal, trail: Audit, db: Db
) -> CaseDetail:
    """The case with the whole conversation (audited like a break-glass read)."""
    messages = await sessions.messages_of(db=db, session_id=case.session_id)
    out = await _out(db, case, principal)
    trail(
        "case.read", target_type="case", target_id=case.id, subject_id=case.patient_id, by=principal
    )
    await db.commit()
    summary = (
        CaseSummary(text=case.summary, model=case.summary_model or "")
        if case.summary is not None
        else None
    )
    return CaseDetail(
        **out.model_dump(),
        messages=await sessions.messages_out(db=db, messages=messages),
        summary=summary,
    )


@router.post("/{case_id}/claim", responses=_ERRORS)
async def claim_case(
    body: ClaimRequest,
    case: VisibleCase,
    principal: ClinicianPrincipal,
    trail: Audit,
    db: Db,
    redis: RedisClient,
) -> CaseOut:
    """Take an open case; by default the model stops answering the session meanwhile."""
    await service.claim(db=db, case=case, principal=principal, pause=body.pause_model)
    return await _done("case.claim", case, principal, trail, db, redis)


@router.post("/{case_id}/pause", responses=_ERRORS)
async def pause_model(
    body: PauseRequest,
    case: VisibleCase,
    principal: ClinicianPrincipal,
    trail: Audit,
    db: Db,
    redis: RedisClient,
) -> CaseOut:
    """Pause or resume the model for the session of a case the caller holds."""
    await service.set_paused(db=db, case=case, principal=principal, paused=body.paused)
    action = "case.pause" if body.paused else "case.resume"
    return await _done(action, case, principal, trail, db, redis)


@router.post("/{case_id}/messages", status_code=201, responses=_ERRORS)
async def reply(
    body: ReplyCreate,
    case: VisibleCase,
    principal: ClinicianPrincipal,
    trail: Audit,
    db: Db,
    redis: RedisClient,
    settings: Settings,
) -> MessageOut:
    """Write to the patient: the message appears in their chat as the clinician's, live in
    an open chat."""
    message = await service.reply(
        db=db, settings=settings, case=case, principal=principal, content=body.content
    )
    trail(
        "case.reply",
        target_type="message",
        target_id=str(message.id),
        subject_id=case.patient_id,
        details={"case_id": str(case.id), "chars": len(body.content)},
        by=principal,
    )
    await db.commit()
    await db.refresh(case)
    out = (await sessions.messages_out(db=db, messages=[message]))[0]
    await live.tell_patient(redis, case.session_id, "message", out)
    await live.tell_patient(
        redis, case.session_id, "handoff", await service.handoff_of(db=db, case=case)
    )
    return out


@router.post("/{case_id}/close", responses=_ERRORS)
async def close_case(
    case: VisibleCase, principal: ClinicianPrincipal, trail: Audit, db: Db, redis: RedisClient
) -> CaseOut:
    """End the hand-off: the model answers the patient again."""
    if not principal.is_admin:
        service.must_hold(case, principal)
    await service.close(db=db, case=case, by="admin" if principal.is_admin else "clinician")
    return await _done("case.close", case, principal, trail, db, redis)


@router.post("/{case_id}/summary", responses=error_responses(401, 403, 404, 409, 502, 503, 504))
async def summarize(
    case: VisibleCase, principal: ClinicianPrincipal, trail: Audit, db: Db, summarizer: Summarizer
) -> CaseSummary:
    """A model-written summary of the conversation for the clinician (labelled as AI-written;
    never shown to the patient)."""
    messages = await sessions.messages_of(db=db, session_id=case.session_id)
    summary = await summarizer.summarize(messages)
    case.summary, case.summary_model = summary.text, summary.model
    trail(
        "case.summary",
        target_type="case",
        target_id=case.id,
        subject_id=case.patient_id,
        by=principal,
    )
    await db.commit()
    return summary
