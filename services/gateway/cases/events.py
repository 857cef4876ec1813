"""The live events of a session while a person is involved (`GET .../events`), as models for
the OpenAPI and the frontend's generated types. On the wire: `event: <event>` then
`data: <data as JSON>`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from services.gateway.sessions.schemas import MessageOut

from .schemas import Handoff


class HandoffEvent(BaseModel):
    """The case opened, was claimed, answered or closed; or the model was paused/resumed."""

    event: Literal["handoff"]
    data: Handoff


class ClinicianMessageEvent(BaseModel):
    """A clinician's reply, as stored in the session (role `clinician`, with its author)."""

    event: Literal["message"]
    data: MessageOut


SessionLiveEvent = Annotated[HandoffEvent | ClinicianMessageEvent, Field(discriminator="event")]
