"""A patient's own data: export everything stored about them, or delete the account with
every conversation (Postgres and Redis). Both audited, never with content.

Legal holds (admins): a held session is kept by retention, by the patient's delete and by
account erasure, which are refused (409 legal_hold) and audited. Holding a session needs no
read of it: the answers carry no content."""

from __future__ import annotations

import uuid

import orjson
from fastapi import APIRouter, Response

from services.gateway.audit.dependencies import Audit
from services.gateway.auth.cookies import clear_login_cookies
from services.gateway.auth.dependencies import AdminPrincipal, CurrentPrincipal
from services.gateway.db import Db
from services.gateway.deps import Context, Settings
from services.gateway.errors import Json
from services.store.tables.sessions import ChatSession

from . import holds, service
from .schemas import LegalHoldIn, LegalHoldOut

# Paths in full: the patient's own data under /api/auth, the holds under /api/admin.
router = APIRouter()


@router.get("/api/auth/me/export", tags=["auth"])
async def export_my_data(principal: CurrentPrincipal, trail: Audit, db: Db) -> Json:
    """Everything stored about the caller: the account and every session with its messages."""
    body = await service.export_data(db=db, user_id=principal.user_id)
    trail("privacy.export", subject_id=principal.user_id, by=principal)
    await db.commit()
    return Json(
        orjson.loads(orjson.dumps(body, default=str)),
        headers={"Content-Disposition": 'attachment; filename="medchat-my-data.json"'},
    )


@router.delete("/api/auth/me", status_code=204, tags=["auth"])
async def delete_my_account(
    principal: CurrentPrincipal,
    response: Response,
    db: Db,
    trail: Audit,
    context: Context,
    settings: Settings,
) -> None:
    """Delete the caller's account and every conversation, in Postgres and Redis (rows go,
    not a flag); the audit log keeps that it happened, never what was said. With a session
    under a legal hold nothing is deleted (409 legal_hold): erasing all but the held sessions
    would need the account kept as their owner, so the account stays whole until the hold
    is released, and the patient can still export it."""
    held = await holds.held_sessions(db=db, user_id=principal.user_id)
    if held:
        trail(
            "privacy.account_delete_refused",
            subject_id=principal.user_id,
            details={"legal_hold": [str(s) for s in held]},
            by=principal,
        )
        await db.commit()
        raise holds.LegalHold(holds.ACCOUNT_HELD)
    session_ids = await service.delete_account(db=db, user_id=principal.user_id)
    trail(
        "privacy.account_deleted",
        subject_id=principal.user_id,
        details={"sessions": len(session_ids)},
        by=principal,
    )
    await db.commit()
    for sid in session_ids:
        await context.drop(sid)
    clear_login_cookies(response, settings)


def hold_out(session: ChatSession) -> LegalHoldOut:
    return LegalHoldOut(
        session_id=session.id,
        patient_id=session.user_id,
        held=session.legal_hold_at is not None,
        reason=session.legal_hold_reason,
        held_at=session.legal_hold_at,
    )


@router.put("/api/admin/sessions/{session_id}/legal-hold", tags=["privacy"])
async def place_legal_hold(
    session_id: uuid.UUID, body: LegalHoldIn, principal: AdminPrincipal, trail: Audit, db: Db
) -> LegalHoldOut:
    """Keep the session (and its messages) from every deletion until released."""
    session = await service.place_legal_hold(db=db, session_id=session_id, reason=body.reason)
    trail(
        "privacy.legal_hold",
        target_type="session",
        target_id=session.id,
        subject_id=session.user_id,
        details={"reason": body.reason},
        by=principal,
    )
    await db.commit()
    return hold_out(session)


@router.delete("/api/admin/sessions/{session_id}/legal-hold", tags=["privacy"])
async def release_legal_hold(
    session_id: uuid.UUID, principal: AdminPrincipal, trail: Audit, db: Db
) -> LegalHoldOut:
    """Release the hold: the session's retention and deletion apply again. Releasing a
    session that is not held changes nothing (and is audited as such)."""
    session, was = await service.release_legal_hold(db=db, session_id=session_id)
    trail(
        "privacy.legal_hold_released",
        target_type="session",
        target_id=session.id,
        subject_id=session.user_id,
        details={"was_held": was is not None, "reason": was},
        by=principal,
    )
    await db.commit()
    return hold_out(session)
