"""Cases: plain functions, keyword-only `db`; the caller commits and audits.

Who sees what: a clinician sees the open queue (to choose what to claim) and the cases they
claimed; a case another clinician claimed answers 404 like a missing one. Admins see all.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import case as when
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.db import utcnow
from services.gateway.auth.principal import Principal
from services.gateway.config import GatewaySettings
from services.gateway.errors import ApiError, NotFound
from services.gateway.sessions.schemas import Author
from services.gateway.sessions.service import author_of, wait_for_lease
from services.store.tables.auth import User
from services.store.tables.cases import ACTIVE_STATES, Case
from services.store.tables.sessions import ChatSession, Message

from .schemas import CaseOut, Handoff

# What the patient reads at each step (zh, en). Urgent cases add the crisis lines the
# emergency notice gives: a person is being brought in, and help does not wait for them.
_SAYS = {
    "open": (
        "已为您转接人工：一位医生会查看这段对话并在这里回复您。",
        "A person is being brought in: a clinician will read this conversation and reply here.",
    ),
    "claimed": (
        "医生已接手这段对话，回复会显示在这里。",
        "A clinician has taken over this conversation; their replies appear here.",
    ),
    "answered": ("医生已回复。", "A clinician has replied."),
    "closed": ("人工对话已结束。", "The hand-off has ended."),
}
_URGENT = (
    "如有生命危险请立即拨打120；心理危机请拨打全国心理援助热线12356。不要等待回复。",
    "If a life is in danger call 120 (or your local emergency number) now; in a crisis call"
    " 12356. Do not wait for a reply.",
)


def is_clinician(principal: Principal) -> bool:
    return principal.role in ("clinician", "admin")


def sla(settings: GatewaySettings, urgent: bool) -> timedelta:
    return timedelta(
        minutes=settings.case_sla_urgent_minutes if urgent else settings.case_sla_minutes
    )


async def active_case(*, db: AsyncSession, session_id: uuid.UUID) -> Case | None:
    query = select(Case).where(Case.session_id == session_id, Case.state.in_(ACTIVE_STATES))
    return (await db.execute(query)).scalar_one_or_none()


async def escalate(
    *,
    db: AsyncSession,
    settings: GatewaySettings,
    session_id: uuid.UUID,
    patient_id: uuid.UUID,
    reason: str,
    urgent: bool = False,
    category: str | None = None,
    message_id: int | None = None,
) -> tuple[Case, bool]:
    """The session's active case, opened now if there was none (then True). A second trigger
    on an active case can only make it more urgent: its SLA clock moves closer."""
    now = utcnow()
    for _ in range(2):  # a concurrent trigger may open it between our read and our insert
        existing = await active_case(db=db, session_id=session_id)
        if existing is not None:
            if urgent and not existing.urgent:
                existing.urgent = True
                existing.due_at = min(existing.due_at, now + sla(settings, True))
                existing.category = existing.category or category
            return existing, False
        row = Case(
            session_id=session_id,
            patient_id=patient_id,
            reason=reason,
            category=category,
            urgent=urgent,
            state="open",
            message_id=message_id,
            opened_at=now,
            due_at=now + sla(settings, urgent),
        )
        try:
            async with db.begin_nested():
                db.add(row)
        except IntegrityError:
            continue
        return row, True
    raise ApiError(409, "case_busy", "this session's case changed meanwhile; try again")


def _visible(principal: Principal) -> object:
    if principal.is_admin:
        return True
    return (Case.state == "open") | (Case.claimed_by == principal.user_id)


async def queue(
    *, db: AsyncSession, principal: Principal, states: Sequence[str], limit: int, offset: int
) -> tuple[Sequence[Case], bool]:
    """Urgent first, then the oldest: the order a clinician should work in."""
    query = (
        select(Case)
        .where(Case.state.in_(states), _visible(principal))  # type: ignore[arg-type]
        .order_by(Case.urgent.desc(), Case.opened_at, Case.id)
        .limit(limit + 1)
        .offset(offset)
    )
    rows = (await db.execute(query)).scalars().all()
    return rows[:limit], len(rows) > limit


async def visible_case(*, db: AsyncSession, principal: Principal, case_id: uuid.UUID) -> Case:
    query = select(Case).where(Case.id == case_id, _visible(principal))  # type: ignore[arg-type]
    row = (await db.execute(query)).scalar_one_or_none()
    if row is None:
        raise NotFound("case")
    return row


async def _authors(db: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, Author]:
    if not ids:
        return {}
    users = (await db.execute(select(User).where(User.id.in_(ids)))).scalars()
    return {u.id: author_of(u) for u in users}


async def _paused(db: AsyncSession, session_ids: set[uuid.UUID]) -> dict[uuid.UUID, bool]:
    if not session_ids:
        return {}
    query = select(ChatSession.id, ChatSession.model_paused).where(ChatSession.id.in_(session_ids))
    return {sid: paused for sid, paused in (await db.execute(query)).all()}


async def cases_out(
    *, db: AsyncSession, cases: Sequence[Case], principal: Principal
) -> list[CaseOut]:
    authors = await _authors(db, {c.claimed_by for c in cases if c.claimed_by})
    paused = await _paused(db, {c.session_id for c in cases})
    now = utcnow()
    return [
        CaseOut(
            id=c.id,
            session_id=c.session_id,
            reason=c.reason,  # type: ignore[arg-type]
            category=c.category,
            urgent=c.urgent,
            state=c.state,  # type: ignore[arg-type]
            opened_at=c.opened_at,
            due_at=c.due_at,
            overdue=c.state == "open" and c.due_at < now,
            claimed_by=authors.get(c.claimed_by) if c.claimed_by else None,
            claimed_by_me=c.claimed_by == principal.user_id,
            claimed_at=c.claimed_at,
            answered_at=c.answered_at,
            closed_at=c.closed_at,
            model_paused=paused.get(c.session_id, False),
        )
        for c in cases
    ]


async def handoff_of(*, db: AsyncSession, case: Case) -> Handoff:
    authors = await _authors(db, {case.claimed_by} if case.claimed_by else set())
    paused = await _paused(db, {case.session_id})
    zh, en = _SAYS[case.state]
    if case.urgent and case.state != "closed":
        zh, en = f"{zh}{_URGENT[0]}", f"{en} {_URGENT[1]}"
    return Handoff(
        case_id=case.id,
        state=case.state,  # type: ignore[arg-type]
        urgent=case.urgent,
        clinician=authors.get(case.claimed_by) if case.claimed_by else None,
        model_paused=paused.get(case.session_id, False),
        message_zh=zh,
        message_en=en,
    )


async def _pause(db: AsyncSession, session_id: uuid.UUID, paused: bool) -> None:
    await db.execute(
        update(ChatSession).where(ChatSession.id == session_id).values(model_paused=paused)
    )


async def claim(*, db: AsyncSession, case: Case, principal: Principal, pause: bool) -> None:
    """Take an open case. Claiming is one conditional UPDATE, so of two clinicians who
    claim at once exactly one wins; the other gets 409."""
    claimed = await db.execute(
        update(Case)
        .where(Case.id == case.id, Case.state == "open")
        .values(state="claimed", claimed_by=principal.user_id, claimed_at=utcnow())
        .returning(Case.id)
    )
    if claimed.first() is None:
        if case.claimed_by == principal.user_id:
            return  # claiming one's own case again changes nothing
        raise ApiError(409, "case_taken", "this case is no longer open: another clinician has it")
    if pause:
        await _pause(db, case.session_id, True)
    await db.refresh(case)


def must_hold(case: Case, principal: Principal) -> None:
    if case.state == "closed":
        raise ApiError(409, "case_closed", "this case is closed")
    if case.claimed_by != principal.user_id:
        raise ApiError(
            409, "case_not_claimed", "claim the case first: only its clinician acts on it"
        )


async def set_paused(*, db: AsyncSession, case: Case, principal: Principal, paused: bool) -> None:
    must_hold(case, principal)
    await _pause(db, case.session_id, paused)


async def reply(
    *,
    db: AsyncSession,
    settings: GatewaySettings,
    case: Case,
    principal: Principal,
    content: str,
) -> Message:
    """The clinician's message in the patient's session, after any answer being written
    (it takes the session's lease like a patient's post)."""
    must_hold(case, principal)
    session_id, case_id = case.session_id, case.id
    newest, _ = await wait_for_lease(db=db, session_id=session_id, s=settings)
    now = utcnow()
    message = Message(
        session_id=session_id,
        seq=newest + 1,
        role="clinician",
        content=content,
        status="complete",
        author_id=principal.user_id,
        created_at=now,
    )
    db.add(message)
    await db.execute(
        update(ChatSession)
        .where(ChatSession.id == session_id)
        .values(busy_until=None, updated_at=now)
    )
    await db.execute(
        update(Case)
        .where(Case.id == case_id)
        .values(
            state="answered",
            answered_at=when((Case.answered_at.is_(None), now), else_=Case.answered_at),
        )
    )
    await db.flush()
    return message


async def close(*, db: AsyncSession, case: Case, by: str) -> None:
    """The hand-off ends (closed by its clinician, the patient, or an admin): the model
    answers again."""
    if case.state == "closed":
        return
    case.state, case.closed_at, case.closed_by = "closed", utcnow(), by
    await _pause(db, case.session_id, False)
