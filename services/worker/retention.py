"""Retention: what is due is deleted (rows, not flags) from Postgres, Redis and the file
store; each pass is audited with counts and ids, never content."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.store.audit import record
from services.store.files import open_store
from services.store.redis_keys import context_key
from services.store.tables.auth import User
from services.store.tables.files import StoredFile
from services.store.tables.sessions import ChatSession

from .config import WorkerSettings
from .db import sessions, task_engine

log = logging.getLogger(__name__)
MAX_IDS_AUDITED = 1000


async def _stale_sessions(db: AsyncSession, cutoff: datetime) -> list[uuid.UUID]:
    rows = await db.execute(
        delete(ChatSession).where(ChatSession.updated_at < cutoff).returning(ChatSession.id)
    )
    return list(rows.scalars())


async def _stale_guests(
    db: AsyncSession, cutoff: datetime
) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """Guests whose last activity (newest session, else sign-up) is before `cutoff`."""
    last = (
        select(ChatSession.user_id, func.max(ChatSession.updated_at).label("last"))
        .group_by(ChatSession.user_id)
        .subquery()
    )
    due = (
        select(User.id)
        .outerjoin(last, last.c.user_id == User.id)
        .where(User.is_guest.is_(True), func.coalesce(last.c.last, User.created_at) < cutoff)
    )
    guests = list((await db.scalars(due)).all())
    if not guests:
        return [], []
    session_ids = list(
        (await db.scalars(select(ChatSession.id).where(ChatSession.user_id.in_(guests)))).all()
    )
    await db.execute(delete(User).where(User.id.in_(guests)))  # sessions and messages cascade
    return guests, session_ids


async def _stale_files(db: AsyncSession, cutoff: datetime) -> list[str]:
    rows = await db.execute(
        delete(StoredFile).where(StoredFile.created_at < cutoff).returning(StoredFile.id)
    )
    return list(rows.scalars())


async def enforce_retention(settings: WorkerSettings, now: datetime) -> dict[str, Any]:
    """One pass at time `now` (a parameter, so tests can move the clock)."""
    session_ids: list[uuid.UUID] = []
    guests: list[uuid.UUID] = []
    files: list[str] = []
    async with task_engine(settings.database_url) as engine, sessions(engine)() as db:
        if settings.retention_days is not None:
            session_ids += await _stale_sessions(db, now - timedelta(days=settings.retention_days))
        if settings.guest_retention_hours is not None:
            guests, guest_sessions = await _stale_guests(
                db, now - timedelta(hours=settings.guest_retention_hours)
            )
            session_ids += guest_sessions
        if settings.file_retention_days is not None:
            files = await _stale_files(db, now - timedelta(days=settings.file_retention_days))
        summary = {"sessions": len(session_ids), "guests": len(guests), "files": len(files)}
        if any(summary.values()):
            record(
                db,
                "retention.delete",
                via="system",
                details={
                    **summary,
                    "session_ids": [str(s) for s in session_ids[:MAX_IDS_AUDITED]],
                    "file_ids": files[:MAX_IDS_AUDITED],
                },
            )
        await db.commit()
    if files:
        store = open_store(settings)
        for file_id in files:
            store.delete(file_id)
    if session_ids:
        redis = Redis.from_url(settings.redis_url)
        try:
            await redis.delete(*(context_key(s) for s in session_ids))
        except (RedisError, OSError):
            # Postgres no longer has the rows, so the entries are unreachable; they expire.
            log.warning("redis unavailable: cached contexts expire by their TTL")
        finally:
            await redis.aclose()
    if any(summary.values()):
        log.info("retention deleted %s", summary)
    return summary
