from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from services.gateway.text import StoredText


class Credentials(BaseModel):
    email: StoredText | None = Field(None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    phone: StoredText | None = Field(None, max_length=32, pattern=r"^\+?[0-9][0-9 -]{5,30}$")
    password: str = Field(min_length=8, max_length=256)

    @model_validator(mode="after")
    def _one_identifier(self) -> Credentials:
        if not (self.email or self.phone):
            raise ValueError("give an email or a phone number")
        return self


class UserOut(BaseModel):
    id: uuid.UUID
    email: str | None
    phone: str | None
    role: str
    is_guest: bool
    display_name: str | None = None
    title: str | None = None


class LoginOut(BaseModel):
    user: UserOut
    csrf_token: str


class ApiKeyCreate(BaseModel):
    name: StoredText = Field(min_length=1, max_length=100)
    role: Literal["integrator", "clinician", "admin"] = Field(
        "integrator",
        description="clinician: a hospital system working the case queue (/api/cases)",
    )


class ApiKeyOut(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str
    role: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="shown once; only its hash is stored")


class RoleChange(BaseModel):
    role: Literal["patient", "clinician", "integrator", "admin"]
    display_name: StoredText | None = Field(
        None, max_length=100, description="how a clinician signs replies"
    )
    title: StoredText | None = Field(None, max_length=100, description='e.g. "主治医师"')


class ClinicianCreate(Credentials):
    display_name: StoredText = Field(min_length=1, max_length=100)
    title: StoredText | None = Field(None, max_length=100)
