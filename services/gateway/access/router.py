"""Admins and patients' conversations: grants (create, list, revoke) and the reads they allow.
Without a live grant an admin gets 403 on a patient's content, and the refusal is audited
like every read."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from services.core.db import utcnow
from services.gateway.audit.dependencies import Audit
from services.gateway.auth.dependencies import AdminPrincipal, Principal
from services.gateway.db import Db
from services.gateway.errors import ApiError, NotFound
from services.gateway.sessions.router import session_detail, session_out
from services.gateway.sessions.schemas import SessionDetail, SessionOut
from services.store.tables.sessions import ChatSession

from . import service
from .schemas import GrantCreate, GrantOut

router = APIRouter(prefix="/api/admin", tags=["access"])


@router.post("/grants", status_code=201)
async def create_grant(
    body: GrantCreate, principal: AdminPrincipal, trail: Audit, db: Db
) -> GrantOut:
    grant = await service.create_grant(db=db, admin_id=principal.user_id, body=body)
    trail(
        "access.grant",
        target_type="grant",
        target_id=grant.id,
        subject_id=body.patient_id,
        details={
            "reason": body.reason,
            "session_id": str(body.session_id) if body.session_id else None,
            "minutes": body.minutes,
        },
        by=principal,
    )
    await db.commit()
    return GrantOut.model_validate(grant)


@router.get("/grants")
async def list_grants(principal: AdminPrincipal, db: Db) -> list[GrantOut]:
    return [GrantOut.model_validate(g) for g in await service.recent_grants(db=db)]


@router.delete("/grants/{grant_id}", status_code=204)
async def revoke_grant(
    grant_id: uuid.UUID, principal: AdminPrincipal, trail: Audit, db: Db
) -> None:
    grant = await service.revoke_grant(db=db, grant_id=grant_id)
    trail(
        "access.revoke",
        target_type="grant",
        target_id=grant.id,
        subject_id=grant.patient_id,
        by=principal,
    )
    await db.commit()


async def _require_grant(
    db: Db,
    trail: Audit,
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
    trail(
        "content.read" if grant else "content.denied",
        target_type="session" if session_id else "patient",
        target_id=session_id or patient_id,
        subject_id=patient_id,
        details={"grant_id": str(grant.id)} if grant else None,
        by=principal,
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
    patient_id: uuid.UUID, principal: AdminPrincipal, trail: Audit, db: Db
) -> list[SessionOut]:
    await _require_grant(db, trail, principal, patient_id, None)
    return [session_out(s) for s in await service.patient_sessions(db=db, patient_id=patient_id)]


@router.get("/patients/{patient_id}/sessions/{session_id}")
async def patient_session(
    patient_id: uuid.UUID,
    session_id: uuid.UUID,
    principal: AdminPrincipal,
    trail: Audit,
    db: Db,
) -> SessionDetail:
    await _require_grant(db, trail, principal, patient_id, session_id)
    session = await db.get(ChatSession, session_id)
    if session is None or session.user_id != patient_id:
        raise NotFound("session")
    return await session_detail(session, db)
