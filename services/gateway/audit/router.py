"""The audit log for the admin console (reading it is itself not audited: it holds no
content)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from services.gateway.auth.dependencies import AdminPrincipal
from services.gateway.db import Db

from . import service
from .schemas import AuditOut, AuditPage

router = APIRouter(prefix="/api/admin/audit", tags=["audit"])


@router.get("")
async def browse(
    _: AdminPrincipal,
    db: Db,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before: int | None = None,
    action: str | None = None,
    actor: uuid.UUID | None = None,
    subject: uuid.UUID | None = None,
    since: datetime | None = None,
) -> AuditPage:
    rows = await service.query(
        db=db,
        limit=limit + 1,
        before_id=before,
        action=action,
        actor_id=actor,
        subject_id=subject,
        since=since,
    )
    return AuditPage.of(rows, limit, AuditOut.model_validate)
