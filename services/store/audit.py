"""The audit log's writer, shared by the gateway (requests) and the worker (retention).
`record` adds the row to the caller's transaction, so an action and its audit entry commit (or
fail) together."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.store.tables.audit import AuditEvent


def record(
    db: AsyncSession,
    action: str,
    *,
    actor_id: uuid.UUID | None = None,
    actor_role: str | None = None,
    via: str = "system",
    target_type: str | None = None,
    target_id: str | uuid.UUID | None = None,
    subject_id: uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
    ip: str | None = None,
    request_id: str | None = None,
) -> AuditEvent:
    event = AuditEvent(
        action=action,
        actor_id=actor_id,
        actor_role=actor_role,
        via=via,
        target_type=target_type,
        target_id=str(target_id) if target_id is not None else None,
        subject_id=subject_id,
        ip=ip,
        request_id=request_id,
        details=details,
    )
    db.add(event)
    return event
