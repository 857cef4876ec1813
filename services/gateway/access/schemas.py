from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class GrantCreate(BaseModel):
    patient_id: uuid.UUID
    session_id: uuid.UUID | None = None  # None: all the patient's sessions
    reason: str = Field(min_length=10, max_length=500)  # written for the audit, so say why
    minutes: int = Field(default=60, ge=1, le=24 * 60)


class GrantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    admin_id: uuid.UUID
    patient_id: uuid.UUID
    session_id: uuid.UUID | None
    reason: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
