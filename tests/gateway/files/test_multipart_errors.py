"""Malformed multipart/form-data uploads, sent as raw bytes: each is refused with a 4xx in the
API's error shape (never a 500), and the store keeps nothing of it. Each test runs against the
directory store and an S3-compatible bucket (`backend`)."""

from __future__ import annotations

import httpx
import pytest

from tests.gateway.files.conftest import Backend
from tests.support.datasets import GOOD_ROW, jsonl
from tests.support.platform import MAX_FILE_BYTES

B = "B"
CT = f"multipart/form-data; boundary={B}"
PURPOSE = b'--B\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nfine-tune\r\n'
FILE_HEAD = (
    b'--B\r\nContent-Disposition: form-data; name="file"; filename="train.jsonl"\r\n'
    b"Content-Type: application/octet-stream\r\n\r\n"
)
ROWS = jsonl(GOOD_ROW, GOOD_ROW)
CLOSE = b"\r\n--B--\r\n"
WELL_FORMED = PURPOSE + FILE_HEAD + ROWS + CLOSE
# More than the gateway hands the store at once (1 MiB), under the upload limit: the store
# already holds a partial file when the body turns out to be malformed.
BIG_ROWS = jsonl(*[GOOD_ROW] * ((MAX_FILE_BYTES * 3 // 4) // len(jsonl(GOOD_ROW))))
LONG = "b" * 300  # python_multipart refuses boundaries over 256 bytes


def body(boundary: str, *parts: bytes) -> bytes:
    return b"".join(parts).replace(b"--B", f"--{boundary}".encode())


MALFORMED = [
    # (Content-Type, body, a fragment of the message)
    pytest.param(CT, b"--B\r\nTrue--B--\r\n", "malformed at byte 14", id="schemathesis-found"),
    pytest.param("multipart/form-data", WELL_FORMED, "no boundary", id="no-boundary"),
    pytest.param("multipart/form-data; boundary=", WELL_FORMED, "no boundary", id="empty-boundary"),
    pytest.param(
        f"multipart/form-data; boundary={LONG}",
        body(LONG, WELL_FORMED),
        "boundary is not usable",
        id="boundary-too-long",
    ),
    pytest.param(
        CT,
        b"--B\r\nContent-Disposition form-data\r\n\r\nx" + CLOSE,
        "malformed",
        id="header-without-colon",
    ),
    pytest.param(
        CT,
        PURPOSE + b"--B\r\nContent-Type: application/octet-stream\r\n\r\n" + ROWS + CLOSE,
        "Content-Disposition",
        id="part-without-content-disposition",
    ),
    pytest.param(
        CT,
        PURPOSE + b'--B\r\nContent-Disposition: form-data; filename="a.jsonl"\r\n\r\n{}' + CLOSE,
        "Content-Disposition",
        id="content-disposition-without-name",
    ),
    pytest.param(CT, b"", "empty", id="empty-body"),
    pytest.param(CT, PURPOSE + FILE_HEAD + ROWS, "closing boundary", id="truncated-in-file"),
    pytest.param(CT, PURPOSE + FILE_HEAD[:30], "closing boundary", id="truncated-in-headers"),
    pytest.param(CT, PURPOSE + FILE_HEAD + ROWS + b"\r\n--B-", "closing boundary", id="half-close"),
    pytest.param(
        CT,
        PURPOSE + FILE_HEAD + ROWS + b"\r\n--B garbage",
        "malformed",
        id="garbage-instead-of-closing-boundary",
    ),
    pytest.param(CT, b"garbage\r\n" + WELL_FORMED, "malformed", id="garbage-before-first-boundary"),
    pytest.param(CT, body("C", WELL_FORMED), "malformed", id="other-boundary-in-body"),
    pytest.param(
        CT,
        PURPOSE + FILE_HEAD + BIG_ROWS + b"\r\n--B\r\nnot a header\r\n\r\n" + CLOSE,
        "malformed",
        id="bad-header-after-1mib-of-file",
    ),
    pytest.param(CT, PURPOSE + FILE_HEAD + BIG_ROWS, "closing boundary", id="truncated-after-1mib"),
]


def _error(r: httpx.Response) -> dict[str, object]:
    body = r.json()
    assert set(body) == {"error"}, body
    error: dict[str, object] = body["error"]
    assert set(error) == {"code", "message", "param", "type"}, error
    return error


@pytest.mark.parametrize(("content_type", "data", "says"), MALFORMED)
def test_malformed_multipart_is_a_400_and_leaves_nothing(
    admin: httpx.Client, backend: Backend, content_type: str, data: bytes, says: str
) -> None:
    before = backend.stored_names()
    listed = len(admin.get("/v1/files", params={"limit": 10_000}).json()["data"])
    r = admin.post("/v1/files", content=data, headers={"Content-Type": content_type})
    assert r.status_code == 400, r.text
    error = _error(r)
    assert (error["code"], error["type"], error["param"]) == (
        "invalid_multipart",
        "invalid_multipart",
        None,
    )
    message = str(error["message"])
    assert says in message, message
    # Says how to send it, too.
    assert "multipart/form-data" in message and "`file` part" in message, message
    assert "purpose=fine-tune" in message, message
    # Nothing stored half-way: no file, no partial upload (files_dir listed), no row.
    assert backend.stored_names() == before
    assert len(admin.get("/v1/files", params={"limit": 10_000}).json()["data"]) == listed


def test_not_multipart_at_all_is_a_400(admin: httpx.Client, backend: Backend) -> None:
    before = backend.stored_names()
    r = admin.post("/v1/files", content=b'{"purpose": "fine-tune"}')
    assert r.status_code == 400, r.text
    assert _error(r)["code"] == "invalid_request"
    assert backend.stored_names() == before


def test_an_epilogue_after_the_closing_boundary_is_ignored(
    admin: httpx.Client, backend: Backend
) -> None:
    """RFC 2046 §5.1.1: whatever follows the closing boundary is an epilogue, to be ignored
    (as python_multipart, Django and Werkzeug do); the upload stands, without it."""
    before = backend.stored_names()
    r = admin.post(
        "/v1/files",
        content=WELL_FORMED + b"garbage \x00\xff after the end\r\n--B\r\n",
        headers={"Content-Type": CT},
    )
    assert r.status_code == 200, r.text
    f = r.json()
    assert f["bytes"] == len(ROWS) and f["rows"] == 2
    assert backend.stored_names() - before == {f"{f['id']}.jsonl"}
    assert admin.get(f"/v1/files/{f['id']}/content").content == ROWS
    assert admin.delete(f"/v1/files/{f['id']}").status_code == 200
    assert f"{f['id']}.jsonl" not in backend.stored_names()
