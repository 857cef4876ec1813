"""Retention: what is due is deleted (rows, not flags) from Postgres, Redis and the file
store; each pass is audited with counts and ids, never content.

Three classes (services/core/settings.py): consultation records (sessions untouched for
consultation_retention_days), guest chats (guests and their sessions, guest_retention_hours
after their last activity) and files (uploads, file_retention_days after the upload). A
session under a legal hold is never deleted, whichever clock made it due: a due guest with a
held session keeps the account and that session (their other sessions go). A hold covers the
session and its messages only; uploaded files are fine-tune datasets that no session
references, so a hold does not keep a file."""

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


async def _stale_sessions(
    db: AsyncSession, cutoff: datetime
) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """Deletes the unheld sessions untouched since `cutoff`; returns (deleted, held) ids."""
    stale = ChatSession.updated_at < cutoff
    held_now = select(ChatSession.id).where(stale, ChatSession.legal_hold_at.is_not(None))
    held = list(await db.scalars(held_now))
    # The hold is part of the statement: a hold placed since the count still keeps the row.
    rows = await db.execute(
        delete(ChatSession)
        .where(stale, ChatSession.legal_hold_at.is_(None))
        .returning(ChatSession.id)
    )
    return list(rows.scalars()), held


async def _stale_guests(
    db: AsyncSession, cutoff: datetime
) -> tuple[list[uuid.UUID], list[uuid.UUID], list[uuid.UUID]]:
    """Guests whose last activity (newest session, else sign-up) is before `cutoff`. Returns
    (deleted guests, deleted session ids, held session ids): a guest with a held session is
    kept with that session, their other sessions go."""
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
        return [], [], []
    # Locked: a hold placed now waits for this pass (and then finds the session gone, or
    # this pass sees it), so the cascade below never takes a held session.
    rows = (
        await db.execute(
            select(ChatSession.id, ChatSession.user_id, ChatSession.legal_hold_at)
            .where(ChatSession.user_id.in_(guests))
            .with_for_update()
        )
    ).all()
    held = [r.id for r in rows if r.legal_hold_at is not None]
    keep_users = {r.user_id for r in rows if r.legal_hold_at is not None}
    session_ids = [r.id for r in rows if r.legal_hold_at is None]
    gone = [g for g in guests if g not in keep_users]
    unheld_of_kept = [r.id for r in rows if r.user_id in keep_users and r.legal_hold_at is None]
    if unheld_of_kept:
        await db.execute(delete(ChatSession).where(ChatSession.id.in_(unheld_of_kept)))
    if gone:
        await db.execute(delete(User).where(User.id.in_(gone)))  # sessions and messages cascade
    return gone, session_ids, held


async def _stale_files(db: AsyncSession, cutoff: datetime) -> list[str]:
    rows = await db.execute(
        delete(StoredFile).where(StoredFile.created_at < cutoff).returning(StoredFile.id)
    )
    return list(rows.scalars())


async def enforce_retention(settings: WorkerSettings, now: datetime) -> dict[str, Any]:
    """One pass at time `now` (a parameter, so tests can move the clock). Returns the counts:
    sessions, guests and files deleted, and `held`: due sessions kept for a legal hold."""
    session_ids: list[uuid.UUID] = []
    held: set[uuid.UUID] = set()
    guests: list[uuid.UUID] = []
    files: list[str] = []
    async with task_engine(settings.database_url) as engine, sessions(engine)() as db:
        if settings.consultation_days is not None:
            deleted, kept = await _stale_sessions(
                db, now - timedelta(days=settings.consultation_days)
            )
            session_ids += deleted
            held.update(kept)
        if settings.guest_retention_hours is not None:
            guests, guest_sessions, kept = await _stale_guests(
                db, now - timedelta(hours=settings.guest_retention_hours)
            )
            session_ids += guest_sessions
            held.update(kept)
        if settings.file_retention_days is not None:
            files = await _stale_files(db, now - timedelta(days=settings.file_retention_days))
        deleted_counts = {"sessions": len(session_ids), "guests": len(guests), "files": len(files)}
        summary = {**deleted_counts, "held": len(held)}
        # Audited when something went (with what a hold kept); a pass that only finds held
        # sessions again is not (it would add an entry every interval for as long as a hold
        # lasts): the log line says it.
        if any(deleted_counts.values()):
            record(
                db,
                "retention.delete",
                via="system",
                details={
                    **summary,
                    "session_ids": [str(s) for s in session_ids[:MAX_IDS_AUDITED]],
                    "file_ids": files[:MAX_IDS_AUDITED],
                    "held_session_ids": [str(s) for s in sorted(held)[:MAX_IDS_AUDITED]],
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
        log.info("retention pass: %s (held: kept for a legal hold)", summary)
    return summary
