"""A multipart upload streamed to the file store: the body is never held in memory, every
byte is hashed and validated as JSONL as it arrives, and the size limit stops the upload at
once."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio
import anyio.to_thread
from fastapi import Request
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from services.core.chatformat.validate import ChunkValidator, ValidationReport
from services.gateway.errors import ApiError
from services.store.files.storage import PendingFile

log = logging.getLogger(__name__)
MAX_FIELD_BYTES = 1024  # purpose and other small form fields
WRITE_BYTES = 1 << 20  # file data is handed to the store's thread in slices this large


HOW_TO_SEND = (
    "send multipart/form-data (a boundary in Content-Type, the body closed by --<boundary>--)"
    " with a `file` part (a .jsonl file) and the field purpose=fine-tune"
)
_CHUNK_OFFSET = re.compile(r"\s*(?:at (?:index )?\d+|\(\d+\))\s*$")


def _bad(code: str, message: str, param: str | None = None) -> ApiError:
    return ApiError(400, code, message, param)


def _malformed(what: str) -> ApiError:
    """A body that is not well-formed multipart/form-data: never a 500."""
    return ApiError(400, "invalid_multipart", f"{what}: {HOW_TO_SEND}", None)


def _parse_error(exc: FormParserError, received: int) -> ApiError:
    """The parser's complaint, its offset (within one chunk) made one within the body."""
    reason = _CHUNK_OFFSET.sub("", str(exc)) or type(exc).__name__
    offset = getattr(exc, "offset", -1)
    where = f" at byte {received + offset}" if isinstance(offset, int) and offset >= 0 else ""
    return _malformed(f"the multipart body is malformed{where} ({reason})")


class _Sink:
    """Writes the file part to the store, hashing and validating it (runs in a worker
    thread)."""

    def __init__(self, target: PendingFile, max_bytes: int, name: str):
        self.max_bytes = max_bytes
        self.size = 0
        self.sha256 = hashlib.sha256()
        self.validator = ChunkValidator(name)
        self._target = target

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.max_bytes:
            raise ApiError(
                413,
                "file_too_large",
                f"the file is larger than the limit of {self.max_bytes} bytes",
                "file",
            )
        self._target.write(data)
        self.sha256.update(data)
        self.validator.feed(data)

    def finish(self) -> ValidationReport:
        return self.validator.finish()


@dataclass
class Upload:
    filename: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    size: int = 0
    sha256: str = ""
    report: ValidationReport | None = None


class _Parts:
    """Multipart callbacks: form fields into `fields`, the part named `file` into a buffer."""

    def __init__(self, upload: Upload, open_sink: Callable[[], _Sink]):
        self.upload = upload
        self.open_sink = open_sink
        self.sink: _Sink | None = None
        self.buffer = bytearray()  # file data not yet handed to the sink
        self._headers: dict[bytes, bytes] = {}
        self._field = b""
        self._value = b""
        self._name: str | None = None
        self._in_file = False
        self._text = bytearray()

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
        }

    def on_part_begin(self) -> None:
        self._headers, self._field, self._value = {}, b"", b""
        self._text.clear()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field, self._value = b"", b""

    def on_headers_finished(self) -> None:
        disposition, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if disposition != b"form-data" or not name:
            # RFC 7578 §4.2: every part names itself in `Content-Disposition: form-data`.
            raise _malformed('a part has no `Content-Disposition: form-data; name="..."` header')
        filename = options.get(b"filename")
        self._name = name
        self._in_file = name == "file"
        if not self._in_file:
            return
        if self.sink is not None:
            raise _bad("invalid_request", "send one file per upload", "file")
        shown = (filename or b"").decode("utf-8", "replace").replace("\\", "/").split("/")[-1]
        if not shown.lower().endswith(".jsonl"):
            raise _bad(
                "invalid_file_format",
                f"{shown or 'the file'!r} is not a .jsonl file: upload one JSON object per line"
                " with the extension .jsonl",
                "file",
            )
        self.upload.filename = shown[:255]
        self.sink = self.open_sink()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self.buffer += data[start:end]
            return
        self._text += data[start:end]
        if len(self._text) > MAX_FIELD_BYTES:
            raise _bad("invalid_request", f"form field {self._name!r} is too long", self._name)

    def on_part_end(self) -> None:
        if not self._in_file and self._name:
            self.upload.fields[self._name] = self._text.decode("utf-8", "replace").strip()
        self._in_file = False


async def receive_upload(request: Request, target: PendingFile, max_bytes: int) -> Upload:
    """Parse a multipart/form-data body into `target` (the caller discards it on error)."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data":
        raise _bad(
            "invalid_request", "send the file as multipart/form-data (fields: file, purpose)"
        )
    if not boundary:
        raise _malformed("the Content-Type has no boundary parameter")
    declared = request.headers.get("content-length", "")
    # Multipart headers and the other fields add a little; a body far beyond the limit is
    # refused before a byte of it is read.
    if declared.isdigit() and int(declared) > max_bytes + 64 * 1024:
        raise ApiError(
            413, "file_too_large", f"the file is larger than the limit of {max_bytes} bytes", "file"
        )
    upload = Upload()
    parts = _Parts(upload, lambda: _Sink(target, max_bytes, upload.filename))
    try:
        parser = MultipartParser(boundary, parts.callbacks())  # type: ignore[arg-type]
    except FormParserError as exc:  # e.g. a boundary longer than the parser allows
        raise _malformed(f"the boundary is not usable ({exc})") from None
    received = 0
    async for chunk in request.stream():
        try:
            parser.write(chunk)
        except FormParserError as exc:  # every error python_multipart raises while parsing
            raise _parse_error(exc, received) from None
        received += len(chunk)
        if parts.sink is not None and len(parts.buffer) >= WRITE_BYTES:
            data, parts.buffer = bytes(parts.buffer), bytearray()
            await anyio.to_thread.run_sync(parts.sink.write, data)
    parser.finalize()
    if received == 0:
        raise _malformed("the body is empty")
    if parser.state != MultipartState.END:
        # python_multipart's finalize() does not check this: a body cut short would
        # otherwise be taken for a complete upload.
        raise _malformed(
            f"the body ended before the closing boundary --{boundary.decode('latin-1')}--"
        )
    if parts.sink is None:
        raise _bad("invalid_request", "the form has no 'file' part", "file")
    sink = parts.sink
    await anyio.to_thread.run_sync(sink.write, bytes(parts.buffer))
    upload.report = await anyio.to_thread.run_sync(sink.finish)
    upload.size, upload.sha256 = sink.size, sink.sha256.hexdigest()
    return upload


async def discard_upload(target: PendingFile) -> None:
    """Remove an upload that will not be kept. Shielded, so that a client that left (the
    request cancelled) still leaves nothing behind; a failure here is logged, never raised
    over the error that brought us here."""
    with anyio.CancelScope(shield=True):
        try:
            await anyio.to_thread.run_sync(target.discard)
        except Exception:
            log.exception("could not remove an unfinished upload")
