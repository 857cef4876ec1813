"""Admins and patients' conversations: grants (create, list, revoke) and the reads they allow.
Without a live grant an admin gets 403 on a patient's content, and the refusal is audited
like every read."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi import APIRouter, Request
from sqlalchemy import select

from services.core.db import utcnow
from services.gateway.audit import service as audit
from services.gateway.auth.dependencies import AdminPrincipal, Principal
from services.gateway.db import Db
from services.gateway.errors import ApiError, NotFound
from services.gateway.sessions.router import session_detail, session_out
from services.gateway.sessions.schemas import SessionDetail, SessionOut
from services.store.tables.access import AccessGrant
from services.store.tables.auth import User
from services.store.tables.sessions import ChatSession

from . import service
from .schemas import GrantCreate, GrantOut

router = APIRouter(prefix="/api/admin", tags=["access"])


@router.post("/grants", status_code=201)
async def create_grant(
    body: GrantCreate, principal: AdminPrincipal, request: Request, db: Db
) -> GrantOut:
    patient = await db.get(User, body.patient_id)
    if patient is None:
        raise NotFound("user")
    if body.session_id is not None:
        session = await db.get(ChatSession, body.session_id)
        if session is None or session.user_id != patient.id:
            raise NotFound("session of this patient")
    grant = AccessGrant(
        admin_id=principal.user_id,
        patient_id=body.patient_id,
        session_id=body.session_id,
        reason=body.reason,
        expires_at=utcnow() + timedelta(minutes=body.minutes),
    )
    db.add(grant)
    await db.flush()
    audit.record(
        db,
        "access.grant",
        request=request,
        target_type="grant",
        target_id=grant.id,
        subject_id=body.patient_id,
        details={
            "reason": body.reason,
            "session_id": str(body.session_id) if body.session_id else None,
            "minutes": body.minutes,
        },
        **audit.actor(principal),
    )
    await db.commit()
    return GrantOut.model_validate(grant)


@router.get("/grants")
async def list_grants(principal: AdminPrincipal, db: Db) -> list[GrantOut]:
    rows = await db.scalars(select(AccessGrant).order_by(AccessGrant.created_at.desc()).limit(200))
    return [GrantOut.model_validate(g) for g in rows]


@router.delete("/grants/{grant_id}", status_code=204)
async def revoke_grant(
    grant_id: uuid.UUID, principal: AdminPrincipal, request: Request, db: Db
) -> None:
    grant = await db.get(AccessGrant, grant_id)
    if grant is None or grant.revoked_at is not None:
        raise NotFound("active grant")
    grant.revoked_at = utcnow()
    audit.record(
        db,
        "access.revoke",
        request=request,
        target_type="grant",
        target_id=grant.id,
        subject_id=grant.patient_id,
        **audit.actor(principal),
    )
    await db.commit()


async def _require_grant(
    db: Db,
    request: Request,
    principal: Principal,
    patient_id: uuid.UUID,
    session_id: uuid.UUID | None,
) -> None:
    grant = await service.active_grant(
        db=db,
        admin_id=principal.user_id,
        patient_id=patient_id,
        session_id=session_id,
        now=utcnow(),
    )
    audit.record(
        db,
        "content.read" if grant else "content.denied",
        request=request,
        target_type="session" if session_id else "patient",
        target_id=session_id or patient_id,
        subject_id=patient_id,
        details={"grant_id": str(grant.id)} if grant else None,
        **audit.actor(principal),
    )
    await db.commit()
    if grant is None:
        raise ApiError(
            403,
            "grant_required",
            "reading a patient's conversations needs a live break-glass grant"
            " (POST /api/admin/grants with a reason)",
        )


@router.get("/patients/{patient_id}/sessions")
async def patient_sessions(
    patient_id: uuid.UUID, principal: AdminPrincipal, request: Request, db: Db
) -> list[SessionOut]:
    await _require_grant(db, request, principal, patient_id, None)
    rows = await db.scalars(
        select(ChatSession)
        .where(ChatSession.user_id == patient_id)
        .order_by(ChatSession.updated_at.desc())
    )
    return [session_out(s) for s in rows]


@router.get("/patients/{patient_id}/sessions/{session_id}")
async def patient_session(
    patient_id: uuid.UUID,
    session_id: uuid.UUID,
    principal: AdminPrincipal,
    request: Request,
    db: Db,
) -> SessionDetail:
    await _require_grant(db, request, principal, patient_id, session_id)
    session = await db.get(ChatSession, session_id)
    if session is None or session.user_id != patient_id:
        raise NotFound("session")
    return await session_detail(session, db)
