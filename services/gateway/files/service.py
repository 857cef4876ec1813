"""Files: rows in Postgres, bytes in the store (the caller commits)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.store.tables.files import StoredFile


async def add_file(
    *,
    db: AsyncSession,
    file_id: str,
    owner_id: uuid.UUID,
    purpose: str,
    filename: str,
    size: int,
    sha256: str,
    rows: int,
) -> StoredFile:
    f = StoredFile(
        id=file_id,
        owner_id=owner_id,
        purpose=purpose,
        filename=filename,
        bytes=size,
        sha256=sha256,
        rows=rows,
    )
    db.add(f)
    await db.flush()
    return f


async def get_file(*, db: AsyncSession, file_id: str) -> StoredFile | None:
    return await db.get(StoredFile, file_id)


async def list_files(
    *, db: AsyncSession, purpose: str | None, limit: int, after: str | None, newest_first: bool
) -> list[StoredFile]:
    """A page of files, `after` a file id (cursor pagination, as OpenAI's list routes)."""
    order = (StoredFile.created_at.desc(), StoredFile.id.desc())
    if not newest_first:
        order = (StoredFile.created_at.asc(), StoredFile.id.asc())
    q = select(StoredFile).order_by(*order).limit(limit)
    if purpose:
        q = q.where(StoredFile.purpose == purpose)
    if after and (cursor := await db.get(StoredFile, after)) is not None:
        key = (StoredFile.created_at, StoredFile.id)
        if newest_first:
            q = q.where(
                (key[0] < cursor.created_at)
                | ((key[0] == cursor.created_at) & (key[1] < cursor.id))
            )
        else:
            q = q.where(
                (key[0] > cursor.created_at)
                | ((key[0] == cursor.created_at) & (key[1] > cursor.id))
            )
    return list((await db.scalars(q)).all())
