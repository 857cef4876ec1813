"""The audit log as the console reads it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from services.gateway.pagination import Page


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


class AuditPage(Page[AuditOut]):
    pass
