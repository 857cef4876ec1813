"""A patient's own data: export everything stored about them, or delete the account with
every conversation (Postgres and Redis). Both audited, never with content."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Response

from services.gateway.audit.dependencies import Audit
from services.gateway.auth.cookies import clear_login_cookies
from services.gateway.auth.dependencies import CurrentPrincipal
from services.gateway.db import Db
from services.gateway.deps import Context, Settings
from services.gateway.errors import Json

from . import service

router = APIRouter(prefix="/api/auth", tags=["auth"])


@router.get("/me/export")
async def export_my_data(principal: CurrentPrincipal, trail: Audit, db: Db) -> Json:
    """Everything stored about the caller: the account and every session with its messages."""
    body = await service.export_data(db=db, user_id=principal.user_id)
    trail("privacy.export", subject_id=principal.user_id, by=principal)
    await db.commit()
    return Json(
        orjson.loads(orjson.dumps(body, default=str)),
        headers={"Content-Disposition": 'attachment; filename="medchat-my-data.json"'},
    )


@router.delete("/me", status_code=204)
async def delete_my_account(
    principal: CurrentPrincipal,
    response: Response,
    db: Db,
    trail: Audit,
    context: Context,
    settings: Settings,
) -> None:
    """Delete the caller's account and every conversation, in Postgres and Redis (rows go,
    not a flag); the audit log keeps that it happened, never what was said."""
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
