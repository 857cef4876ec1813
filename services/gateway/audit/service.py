"""Writing and reading the audit log. `record` adds the row to the caller's transaction, so
an action and its audit entry commit (or fail) together."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.client_ip import client_ip
from services.gateway.observability import request_id
from services.store.audit import record as store_record
from services.store.tables.audit import AuditEvent


def record(
    db: AsyncSession,
    action: str,
    *,
    request: Request | None = None,
    **fields: Any,
) -> AuditEvent:
    """`store.audit.record` with the request's client address and id (when there is one)."""
    if request is not None:
        fields |= {"ip": client_ip(request), "request_id": request_id.get()}
    return store_record(db, action, **fields)


async def query(
    *,
    db: AsyncSession,
    limit: int,
    before_id: int | None = None,
    action: str | None = None,
    actor_id: uuid.UUID | None = None,
    subject_id: uuid.UUID | None = None,
    since: datetime | None = None,
) -> list[AuditEvent]:
    """Newest first; `action` matches a prefix ("login" finds login.ok and login.failed)."""
    q = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if before_id is not None:
        q = q.where(AuditEvent.id < before_id)
    if action:
        q = q.where(AuditEvent.action.startswith(action, autoescape=True))
    if actor_id:
        q = q.where(AuditEvent.actor_id == actor_id)
    if subject_id:
        q = q.where(AuditEvent.subject_id == subject_id)
    if since:
        q = q.where(AuditEvent.at >= since)
    return list((await db.scalars(q)).all())


def actor(principal: Any) -> dict[str, Any]:
    """`record` keywords naming a Principal (auth.dependencies) as the actor."""
    return {"actor_id": principal.user_id, "actor_role": principal.role, "via": principal.via}
