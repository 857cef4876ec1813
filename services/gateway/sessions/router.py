from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.gateway.audit.dependencies import Audit
from services.gateway.auth.dependencies import CurrentPrincipal
from services.gateway.db import Db
from services.gateway.deps import Context, Settings
from services.gateway.errors import ApiError, Json
from services.gateway.privacy import holds
from services.store.tables.sessions import ChatSession

from . import service
from .dependencies import OwnedSession
from .schemas import (
    SessionCreate,
    SessionDetail,
    SessionOut,
    SessionPage,
    SessionRename,
)

router = APIRouter(prefix="/api/sessions", tags=["sessions"])


def session_out(row: ChatSession) -> SessionOut:
    return SessionOut.model_validate(row, from_attributes=True)


@router.post("", status_code=201)
async def create_session(
    body: SessionCreate, principal: CurrentPrincipal, db: Db, settings: Settings
) -> SessionOut:
    limit = settings.max_sessions_per_user
    if await service.count_sessions(db=db, user_id=principal.user_id) >= limit:
        raise ApiError(
            409, "too_many_sessions", f"at most {limit} sessions per user; delete old ones first"
        )
    row = await service.create_session(db=db, user_id=principal.user_id, title=body.title)
    await db.commit()
    return session_out(row)


@router.get("")
async def list_sessions(
    principal: CurrentPrincipal,
    db: Db,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,  # a bigint overflow was a 500
) -> SessionPage:
    rows, more = await service.list_sessions(
        db=db, user_id=principal.user_id, limit=limit, offset=offset
    )
    return SessionPage(data=[session_out(r) for r in rows], has_more=more)


async def session_detail(session: ChatSession, db: Db) -> SessionDetail:
    messages = await service.messages_of(db=db, session_id=session.id)
    return SessionDetail(
        **session_out(session).model_dump(),
        messages=await service.messages_out(db=db, messages=messages),
    )


@router.get("/{session_id}")
async def read_session(session: OwnedSession, db: Db) -> SessionDetail:
    return await session_detail(session, db)


@router.patch("/{session_id}")
async def rename_session(body: SessionRename, session: OwnedSession, db: Db) -> SessionOut:
    session.title = body.title
    await db.commit()
    return session_out(session)


@router.delete("/{session_id}", status_code=204)
async def delete_session(
    session: OwnedSession, principal: CurrentPrincipal, db: Db, context: Context, trail: Audit
) -> None:
    """Delete the session and its messages, unless it is under a legal hold: then 409
    legal_hold (the admin's reason stays in the audit, not in the answer), audited."""
    reason = await holds.hold_reason(db=db, session_id=session.id)  # locks the row
    if reason is not None:
        trail(
            "privacy.session_delete_refused",
            target_type="session",
            target_id=session.id,
            subject_id=session.user_id,
            details={"legal_hold": reason},
            by=principal,
        )
        await db.commit()
        raise holds.LegalHold(holds.SESSION_HELD)
    await service.delete_session(db=db, session_id=session.id)
    await db.commit()
    await context.drop(session.id)


@router.get("/{session_id}/export")
async def export_session(session: OwnedSession, db: Db) -> Json:
    detail = await session_detail(session, db)
    return Json(
        detail.model_dump(mode="json"),
        headers={"Content-Disposition": f'attachment; filename="session-{session.id}.json"'},
    )
