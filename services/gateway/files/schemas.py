"""OpenAI's file object, so `client.files.create/retrieve/list/delete` work unchanged."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from services.gateway.pagination import Page
from services.store.tables.files import StoredFile


class FileObject(BaseModel):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: Literal["processed"] = "processed"  # stored only once complete and valid
    status_details: str | None = None
    sha256: str
    rows: int
    report: dict[str, Any] | None = None  # token-level validation, once the worker has run

    @classmethod
    def of(cls, f: StoredFile) -> FileObject:
        return cls(
            id=f.id,
            bytes=f.bytes,
            created_at=int(f.created_at.timestamp()),
            filename=f.filename,
            purpose=f.purpose,
            sha256=f.sha256,
            rows=f.rows,
            report=f.report,
        )


class FileList(Page[FileObject]):
    first_id: str | None = None
    last_id: str | None = None


class FileDeleted(BaseModel):
    id: str
    object: Literal["file"] = "file"
    deleted: bool = True
