"""Where uploaded files live: a directory shared by the gateway and the worker (`DirStore`,
the default) or an S3-compatible bucket (`S3Store`, MEDCHAT_FILES_BACKEND=s3).

Stored names come from the file id alone, never from what the client called the file, so a
name like `../../etc/passwd` is just text in the database. An upload is written as pending
and becomes visible only once it is complete and valid (`complete`); `discard` removes
whatever it left, complete or not: nothing is ever stored half-way."""

from __future__ import annotations

import os
import re
import secrets
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import BinaryIO, Protocol

_FILE_ID = re.compile(r"file-[0-9a-f]{24}")
READ_BYTES = 1 << 20  # /content is streamed in chunks this large


def new_file_id() -> str:
    return f"file-{secrets.token_hex(12)}"


def check_file_id(file_id: str) -> str:
    if not _FILE_ID.fullmatch(file_id):
        raise ValueError(f"not a file id: {file_id!r}")
    return file_id


class PendingFile(Protocol):
    """One file being written. Blocking calls: the gateway runs them in worker threads."""

    def write(self, data: bytes) -> None: ...

    def complete(self) -> None:
        """Make the file visible under its id."""

    def discard(self) -> None:
        """Remove what was written, completed or not (idempotent)."""


class FileStore(Protocol):
    def begin(self, file_id: str) -> PendingFile: ...

    def delete(self, file_id: str) -> None: ...

    def local_path(self, file_id: str) -> Path | None:
        """The file itself on this machine, where the backend keeps it as one (else None)."""

    def open_content(self, file_id: str) -> Iterator[bytes]:
        """The file's bytes in chunks; FileNotFoundError when it is not stored."""

    def local_copy(self, file_id: str) -> AbstractContextManager[Path]:
        """A path to the file for as long as the context lasts (validation, the trainer);
        FileNotFoundError when it is not stored."""


class DirStore:
    """Files as `<root>/<id>.jsonl`; uploads written under `<root>/.partial/` and renamed
    into place (the same filesystem: atomic)."""

    def __init__(self, root: Path):
        self.root = root
        self._partial = root / ".partial"

    def path(self, file_id: str) -> Path:
        return self.root / f"{check_file_id(file_id)}.jsonl"

    def begin(self, file_id: str) -> _DirPending:
        self._partial.mkdir(parents=True, exist_ok=True)
        return _DirPending(self._partial / f"{uuid.uuid4().hex}.part", self.path(file_id))

    def delete(self, file_id: str) -> None:
        self.path(file_id).unlink(missing_ok=True)

    def local_path(self, file_id: str) -> Path:
        return self.path(file_id)

    def open_content(self, file_id: str) -> Iterator[bytes]:
        fh = self.path(file_id).open("rb")
        return _chunks(fh)

    @contextmanager
    def local_copy(self, file_id: str) -> Iterator[Path]:
        path = self.path(file_id)
        if not path.is_file():
            raise FileNotFoundError(file_id)
        yield path


def _chunks(fh: BinaryIO) -> Iterator[bytes]:
    with fh:
        while data := fh.read(READ_BYTES):
            yield data


class _DirPending:
    def __init__(self, partial: Path, target: Path):
        self.partial = partial
        self.target = target
        self._file = partial.open("wb")
        self._completed = False

    def write(self, data: bytes) -> None:
        self._file.write(data)

    def complete(self) -> None:
        self._file.close()
        os.replace(self.partial, self.target)
        self._completed = True

    def discard(self) -> None:
        self._file.close()
        self.partial.unlink(missing_ok=True)
        if self._completed:
            self.target.unlink(missing_ok=True)
