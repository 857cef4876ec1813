"""The audit log for the admin console (reading it is itself not audited: it holds no
content)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from services.gateway.auth.dependencies import AdminPrincipal
from services.gateway.db import Db

from . import service

router = APIRouter(prefix="/api/admin/audit", tags=["audit"])


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor_id: uuid.UUID | None
    actor_role: str | None
    via: str
    action: str
    target_type: str | None
    target_id: str | None
    subject_id: uuid.UUID | None
    ip: str | None
    request_id: str | None
    details: dict[str, Any] | None


class AuditPage(BaseModel):
    data: list[AuditOut]
    has_more: bool


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
    return AuditPage(
        data=[AuditOut.model_validate(r) for r in rows[:limit]], has_more=len(rows) > limit
    )
