"""The audit log bound to the request: routes write `trail("action", by=principal, ...)` and
the entry carries the client address, the request id and the route's own transaction."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request

from services.gateway.db import Db
from services.store.tables.audit import AuditEvent

from .service import record


class Actor(Protocol):
    """Who acted: an authenticated principal (auth.dependencies.Principal)."""

    @property
    def user_id(self) -> uuid.UUID: ...
    @property
    def role(self) -> str: ...
    @property
    def via(self) -> str: ...


class AuditTrail:
    def __init__(self, request: Request, db: Db) -> None:
        self.request = request
        self.db = db  # the route's own session (one per request): entry and action commit together

    def __call__(self, action: str, *, by: Actor | None = None, **fields: Any) -> AuditEvent:
        actor = {"actor_id": by.user_id, "actor_role": by.role, "via": by.via} if by else {}
        return record(self.db, action, request=self.request, **(actor | fields))


Audit = Annotated[AuditTrail, Depends(AuditTrail)]
