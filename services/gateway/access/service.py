"""Break-glass access: an admin reads a patient's conversations only under a grant that names
the patient (or one session), a reason and an expiry; every use is audited."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.store.tables.access import AccessGrant


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
