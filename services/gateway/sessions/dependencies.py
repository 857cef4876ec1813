from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from services.gateway.auth.dependencies import CurrentPrincipal
from services.gateway.db import Db
from services.gateway.errors import NotFound
from services.store.tables.sessions import ChatSession

from . import service


async def owned_session(session_id: uuid.UUID, principal: CurrentPrincipal, db: Db) -> ChatSession:
    """The caller's own session. Another user's id answers exactly like a missing one (404),
    so ids cannot be probed."""
    row = await service.owned_session(db=db, session_id=session_id, user_id=principal.user_id)
    if row is None:
        raise NotFound("session")
    return row


OwnedSession = Annotated[ChatSession, Depends(owned_session)]
