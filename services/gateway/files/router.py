"""OpenAI's Files API for fine-tune datasets (admins only): upload, list, retrieve, delete,
content."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal
from urllib.parse import quote

import anyio.to_thread
from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, Response, StreamingResponse

from services.gateway.audit.dependencies import Audit
from services.gateway.auth.dependencies import AdminPrincipal
from services.gateway.config import GatewaySettings
from services.gateway.db import Db
from services.gateway.deps import Files, Queue, Settings
from services.gateway.errors import ApiError, NotFound
from services.store.files.storage import new_file_id
from services.store.tasks import TaskQueue

from . import service
from .schemas import FileDeleted, FileList, FileObject
from .upload import discard_upload, receive_upload

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/files", tags=["files"])

PURPOSES = ("fine-tune",)
MAX_DETAILS = 100  # problems listed in an upload's error body (all are counted)

_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "purpose"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "purpose": {"type": "string", "enum": list(PURPOSES)},
                    },
                }
            }
        },
    }
}


@router.post("", response_model=FileObject, openapi_extra=_UPLOAD_BODY)
async def upload_file(
    request: Request,
    db: Db,
    trail: Audit,
    principal: AdminPrincipal,
    store: Files,
    settings: Settings,
    queue: Queue,
) -> FileObject:
    """Upload a JSONL dataset (multipart: `file`, `purpose=fine-tune`). It is streamed to the
    store and checked line by line as it arrives; a file with errors is refused with every
    problem's line number, and nothing is kept."""
    file_id = new_file_id()
    pending = store.begin(file_id)
    try:
        upload = await receive_upload(request, pending, settings.max_file_bytes)
        purpose = upload.fields.get("purpose", "")
        if purpose not in PURPOSES:
            raise ApiError(
                400,
                "invalid_purpose",
                f"purpose must be one of {', '.join(PURPOSES)} (got {purpose!r})",
                "purpose",
            )
        report = upload.report
        assert report is not None
        if upload.size == 0 or report.rows == 0:
            raise ApiError(
                400, "empty_file", "the file has no rows: upload one JSON object per line", "file"
            )
        if not report.ok:
            problems = [p.to_dict() for p in report.problems if p.severity == "error"]
            first = problems[0]
            raise ApiError(
                400,
                "invalid_file",
                f"{report.errors} error(s) in the file; the first, line {first['line']}:"
                f" {first['message']} ({first['code']})",
                "file",
                details=problems[:MAX_DETAILS],
            )
        stored = await service.add_file(
            db=db,
            file_id=file_id,
            owner_id=principal.user_id,
            purpose=purpose,
            filename=upload.filename,
            size=upload.size,
            sha256=upload.sha256,
            rows=report.rows,
        )
        trail(
            "file.upload",
            target_type="file",
            target_id=file_id,
            details={"bytes": upload.size, "rows": report.rows, "sha256": upload.sha256},
            by=principal,
        )
        # Stored before the row is committed; a commit that fails removes it again.
        await anyio.to_thread.run_sync(pending.complete)
        await db.commit()
    except BaseException:
        await discard_upload(pending)
        raise
    await _request_report(settings, queue, file_id)
    return FileObject.of(stored)


async def _request_report(settings: GatewaySettings, queue: TaskQueue, file_id: str) -> None:
    """Ask the worker for the token-level report with the served model's tokenizer. Best
    effort: the upload stands without it, and the console shows the report as pending."""
    if settings.tokenizer_path is None:
        return
    args = [file_id, str(settings.tokenizer_path), settings.profile]
    try:
        await queue.file_report(*args)
    except Exception:
        log.warning("could not queue the report of %s", file_id, exc_info=True)


@router.get("", response_model=FileList)
async def list_files(
    db: Db,
    _: AdminPrincipal,
    purpose: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    after: str | None = None,
    order: Literal["asc", "desc"] = "desc",
) -> FileList:
    page = await service.list_files(
        db=db, purpose=purpose, limit=limit + 1, after=after, newest_first=order == "desc"
    )
    files = FileList.of(page, limit, FileObject.of)
    if files.data:
        files.first_id, files.last_id = files.data[0].id, files.data[-1].id
    return files


@router.get("/{file_id}", response_model=FileObject)
async def retrieve_file(file_id: str, db: Db, _: AdminPrincipal) -> FileObject:
    f = await service.get_file(db=db, file_id=file_id)
    if f is None:
        raise NotFound("file")
    return FileObject.of(f)


@router.delete("/{file_id}", response_model=FileDeleted)
async def delete_file(
    file_id: str, trail: Audit, db: Db, principal: AdminPrincipal, store: Files
) -> FileDeleted:
    f = await service.get_file(db=db, file_id=file_id)
    if f is None:
        raise NotFound("file")
    await db.delete(f)
    trail(
        "file.delete",
        target_type="file",
        target_id=file_id,
        by=principal,
    )
    await db.commit()
    await anyio.to_thread.run_sync(store.delete, file_id)
    return FileDeleted(id=file_id)


@router.get("/{file_id}/content", response_class=FileResponse)
async def file_content(file_id: str, db: Db, _: AdminPrincipal, store: Files) -> Response:
    f = await service.get_file(db=db, file_id=file_id)
    if f is None:
        raise NotFound("file")
    path = store.local_path(f.id)
    if path is not None:
        return FileResponse(path, media_type="application/jsonl", filename=f.filename)
    try:
        chunks = await anyio.to_thread.run_sync(store.open_content, f.id)
    except FileNotFoundError:
        raise NotFound("file") from None
    # Streamed from the store chunk by chunk (each read in a worker thread), never whole.
    headers = {"Content-Length": str(f.bytes), "Content-Disposition": _attachment(f.filename)}
    return StreamingResponse(chunks, media_type="application/jsonl", headers=headers)


def _attachment(filename: str) -> str:
    """Content-Disposition as FileResponse writes it (RFC 6266 `filename*` when needed)."""
    quoted = quote(filename)
    if quoted != filename:
        return f"attachment; filename*=utf-8''{quoted}"
    return f'attachment; filename="{filename}"'
