"""Break-glass access: an admin reads a patient's conversations only under a grant that names
the patient (or one session), a reason and an expiry; every use is audited."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.db import utcnow
from services.gateway.errors import NotFound
from services.store.tables.access import AccessGrant
from services.store.tables.auth import User
from services.store.tables.sessions import ChatSession

from .schemas import GrantCreate


async def create_grant(*, db: AsyncSession, admin_id: uuid.UUID, body: GrantCreate) -> AccessGrant:
    """A grant for `admin_id` on a patient (or one of the patient's sessions), flushed."""
    patient = await db.get(User, body.patient_id)
    if patient is None:
        raise NotFound("user")
    if body.session_id is not None:
        session = await db.get(ChatSession, body.session_id)
        if session is None or session.user_id != patient.id:
            raise NotFound("session of this patient")
    grant = AccessGrant(
        admin_id=admin_id,
        patient_id=body.patient_id,
        session_id=body.session_id,
        reason=body.reason,
        expires_at=utcnow() + timedelta(minutes=body.minutes),
    )
    db.add(grant)
    await db.flush()
    return grant


async def recent_grants(*, db: AsyncSession, limit: int = 200) -> list[AccessGrant]:
    q = select(AccessGrant).order_by(AccessGrant.created_at.desc()).limit(limit)
    return list((await db.scalars(q)).all())


async def revoke_grant(*, db: AsyncSession, grant_id: uuid.UUID) -> AccessGrant:
    grant = await db.get(AccessGrant, grant_id)
    if grant is None or grant.revoked_at is not None:
        raise NotFound("active grant")
    grant.revoked_at = utcnow()
    return grant


async def active_grant(
    *,
    db: AsyncSession,
    admin_id: uuid.UUID,
    patient_id: uuid.UUID,
    session_id: uuid.UUID | None,
    now: datetime,
) -> AccessGrant | None:
    """A live grant covering the patient (and the session, when one is asked for)."""
    q = select(AccessGrant).where(
        AccessGrant.admin_id == admin_id,
        AccessGrant.patient_id == patient_id,
        AccessGrant.revoked_at.is_(None),
        AccessGrant.expires_at > now,
    )
    if session_id is not None:
        q = q.where((AccessGrant.session_id.is_(None)) | (AccessGrant.session_id == session_id))
    else:
        q = q.where(AccessGrant.session_id.is_(None))
    return (await db.scalars(q.order_by(AccessGrant.expires_at.desc()).limit(1))).first()


async def patient_sessions(*, db: AsyncSession, patient_id: uuid.UUID) -> list[ChatSession]:
    """A patient's sessions, most recently active first (read under a grant)."""
    q = select(ChatSession).where(ChatSession.user_id == patient_id)
    return list((await db.scalars(q.order_by(ChatSession.updated_at.desc()))).all())
