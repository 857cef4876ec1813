from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, ValidationError, field_validator


class WebhookCreate(BaseModel):
    url: str = Field(
        max_length=2000,
        description="where case events are POSTed: an http or https URL, without credentials"
        " (each delivery is signed instead: X-MedChat-Signature)",
        examples=["https://his.hospital.example/medchat/events"],
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip()
        try:
            parsed = AnyHttpUrl(value)
        except ValidationError:  # another scheme, no host, or not a URL at all
            raise ValueError("must be an http:// or https:// URL") from None
        if parsed.username or parsed.password:
            # They would be shown in every listing; the signature authenticates us instead.
            raise ValueError("the URL must not carry credentials: verify the signature instead")
        return str(parsed)  # the form that is sent to (host lower case, IDNA)


class WebhookOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str
    created_by: uuid.UUID | None
    created_at: datetime
    disabled_at: datetime | None = Field(description="set when an admin disabled it")


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description="the signing secret of X-MedChat-Signature: shown this once, never again"
    )


class DeliveryOut(BaseModel):
    """One event sent (or being sent) to a webhook; the body itself is not listed."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID = Field(description="also sent as X-MedChat-Delivery and the body's id")
    event: Literal["case.opened"]
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    last_status_code: int | None = Field(description="the receiver's last HTTP status")
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
