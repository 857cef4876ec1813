"""Where uploaded files live: a directory shared by the gateway and the worker.

Stored names come from the file id alone, never from what the client called the file, so a
name like `../../etc/passwd` is just text in the database. An upload is written under
`.partial/` and renamed into place only once it is complete and valid: nothing is ever
stored half-way."""

from __future__ import annotations

import os
import re
import secrets
import uuid
from pathlib import Path

_FILE_ID = re.compile(r"file-[0-9a-f]{24}")


def new_file_id() -> str:
    return f"file-{secrets.token_hex(12)}"


class FileStore:
    def __init__(self, root: Path):
        self.root = root
        self._partial = root / ".partial"

    def path(self, file_id: str) -> Path:
        if not _FILE_ID.fullmatch(file_id):
            raise ValueError(f"not a file id: {file_id!r}")
        return self.root / f"{file_id}.jsonl"

    def partial(self) -> Path:
        self._partial.mkdir(parents=True, exist_ok=True)
        return self._partial / f"{uuid.uuid4().hex}.part"

    def commit(self, partial: Path, file_id: str) -> Path:
        target = self.path(file_id)
        os.replace(partial, target)  # same filesystem: atomic
        return target

    def delete(self, file_id: str) -> None:
        self.path(file_id).unlink(missing_ok=True)
