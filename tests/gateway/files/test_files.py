"""The Files API: uploads streamed, checked line by line, refused whole; admins only. Each
test runs against the directory store and an S3-compatible bucket (`backend`)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.gateway.files.conftest import Backend
from tests.support.datasets import GOOD_ROW, jsonl, upload
from tests.support.platform import MAX_FILE_BYTES, Patient, make_key
from tests.support.tokenizers import SFT_EXAMPLES


def test_upload_list_retrieve_content_delete(admin: httpx.Client, backend: Backend) -> None:
    data = SFT_EXAMPLES.read_bytes()
    r = upload(admin, data, "sft_examples.jsonl")
    assert r.status_code == 200, r.text
    f = r.json()
    assert f["object"] == "file" and f["id"].startswith("file-")
    assert (f["bytes"], f["purpose"], f["filename"]) == (
        len(data),
        "fine-tune",
        "sft_examples.jsonl",
    )
    assert f["sha256"] == hashlib.sha256(data).hexdigest()
    assert f["rows"] == len(data.splitlines())

    assert admin.get(f"/v1/files/{f['id']}").json() == f
    assert f["id"] in [x["id"] for x in admin.get("/v1/files").json()["data"]]
    content = admin.get(f"/v1/files/{f['id']}/content")
    assert content.status_code == 200 and content.content == data

    deleted = admin.delete(f"/v1/files/{f['id']}")
    assert deleted.json() == {"id": f["id"], "object": "file", "deleted": True}
    assert admin.get(f"/v1/files/{f['id']}").status_code == 404
    assert f"{f['id']}.jsonl" not in backend.stored_names()


def test_list_is_paginated_newest_first(admin: httpx.Client) -> None:
    ids = [upload(admin, jsonl(GOOD_ROW)).json()["id"] for _ in range(3)]
    first = admin.get("/v1/files", params={"limit": 2}).json()
    assert [x["id"] for x in first["data"]] == ids[::-1][:2] and first["has_more"]
    rest = admin.get("/v1/files", params={"limit": 2, "after": first["last_id"]}).json()
    assert rest["data"][0]["id"] == ids[0]


BAD_FILES = [
    pytest.param(
        jsonl(GOOD_ROW, GOOD_ROW) + b'{"conversation": [\n' + jsonl(GOOD_ROW),
        "train.jsonl",
        "fine-tune",
        (400, "invalid_file", 3, "invalid_json"),
        id="invalid-json-line-3",
    ),
    pytest.param(
        jsonl(GOOD_ROW, {"conversation": [{"role": "nurse", "content": "x"}]}),
        "train.jsonl",
        "fine-tune",
        (400, "invalid_file", 2, "unrecognized_role"),
        id="wrong-role-line-2",
    ),
    pytest.param(
        jsonl(GOOD_ROW) + b'{"conversation": "\xff\xfe"}\n',
        "train.jsonl",
        "fine-tune",
        (400, "invalid_file", 2, "not_utf8"),
        id="not-utf8",
    ),
    pytest.param(b"", "train.jsonl", "fine-tune", (400, "empty_file", None, None), id="0-byte"),
    pytest.param(b"\n\n", "train.jsonl", "fine-tune", (400, "empty_file", None, None), id="empty"),
    pytest.param(
        jsonl(GOOD_ROW),
        "train.csv",
        "fine-tune",
        (400, "invalid_file_format", None, None),
        id="ext",
    ),
    pytest.param(
        jsonl(GOOD_ROW),
        "train.jsonl",
        "assistants",
        (400, "invalid_purpose", None, None),
        id="purpose",
    ),
    pytest.param(
        jsonl(*[GOOD_ROW] * (MAX_FILE_BYTES // len(jsonl(GOOD_ROW)) + 10)),
        "big.jsonl",
        "fine-tune",
        (413, "file_too_large", None, None),
        id="over-the-limit",
    ),
]


@pytest.mark.parametrize(("data", "name", "purpose", "expected"), BAD_FILES)
def test_bad_files_are_refused_whole(
    admin: httpx.Client,
    backend: Backend,
    data: bytes,
    name: str,
    purpose: str,
    expected: tuple[int, str, int | None, str | None],
) -> None:
    status, code, line, problem = expected
    before = backend.stored_names()
    listed = len(admin.get("/v1/files", params={"limit": 10_000}).json()["data"])
    r = upload(admin, data, name, purpose)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code and error["message"]
    if line is not None:
        assert (error["details"][0]["line"], error["details"][0]["code"]) == (line, problem)
        assert f"line {line}" in error["message"]
    # Nothing stored half-way: no new file, no partial upload, no row.
    assert backend.stored_names() == before
    assert len(admin.get("/v1/files", params={"limit": 10_000}).json()["data"]) == listed


def test_chunked_upload_over_the_limit_stops_early(admin: httpx.Client, backend: Backend) -> None:
    """Without Content-Length the gateway counts as it reads and answers 413."""
    boundary = "b0undary"
    row = jsonl(GOOD_ROW)

    def body() -> Iterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nfine-tune\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.jsonl"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        for _ in range(2 * MAX_FILE_BYTES // len(row)):
            yield row
        yield f"\r\n--{boundary}--\r\n".encode()

    before = backend.stored_names()
    r = admin.post(
        "/v1/files",
        content=body(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "file_too_large"
    assert backend.stored_names() == before


def test_path_traversal_file_name_is_only_a_label(
    admin: httpx.Client, backend: Backend, tmp_path: Path
) -> None:
    r = upload(admin, jsonl(GOOD_ROW), "../../../../tmp/evil.jsonl")
    assert r.status_code == 200, r.text
    f = r.json()
    assert f["filename"] == "evil.jsonl"
    assert f"{f['id']}.jsonl" in backend.stored_names()
    assert not Path("/tmp/evil.jsonl").exists()
    assert admin.get("/v1/files/..%2F..%2Fetc%2Fpasswd/content").status_code == 404


def test_only_admins_reach_files(
    backend: Backend, database_url: str, new_guest: Callable[[], Patient], admin: httpx.Client
) -> None:
    file_id = upload(admin, jsonl(GOOD_ROW)).json()["id"]
    integrator = httpx.Client(
        base_url=backend.url,
        headers={"Authorization": f"Bearer {make_key(database_url, 'integrator')}"},
    )
    patient = new_guest()
    anonymous = httpx.Client(base_url=backend.url)
    routes = [
        ("GET", "/v1/files"),
        ("GET", f"/v1/files/{file_id}"),
        ("GET", f"/v1/files/{file_id}/content"),
        ("DELETE", f"/v1/files/{file_id}"),
    ]
    for method, path in routes:
        assert integrator.request(method, path).status_code == 403, path
        assert anonymous.request(method, path).status_code == 401, path
        assert patient.client.request(method, path).status_code == 403, path
    assert upload(integrator, jsonl(GOOD_ROW)).status_code == 403
    assert patient.post("/v1/files", data={"purpose": "fine-tune"}).status_code == 403
    assert admin.get(f"/v1/files/{file_id}").status_code == 200  # still there
    integrator.close()
    anonymous.close()


def test_openai_sdk_files(backend: Backend, database_url: str, tmp_path: Path) -> None:
    client = openai.OpenAI(base_url=f"{backend.url}/v1", api_key=make_key(database_url, "admin"))
    path = tmp_path / "data.jsonl"
    path.write_bytes(jsonl(GOOD_ROW, GOOD_ROW))
    with path.open("rb") as fh:
        created = client.files.create(file=fh, purpose="fine-tune")
    assert created.bytes == path.stat().st_size and created.filename == "data.jsonl"
    assert client.files.retrieve(created.id).id == created.id
    assert created.id in [f.id for f in client.files.list()]
    assert client.files.content(created.id).read() == path.read_bytes()
    assert client.files.delete(created.id).deleted
    with pytest.raises(openai.BadRequestError) as err:
        client.files.create(file=("bad.jsonl", b"{oops\n"), purpose="fine-tune")
    assert "line 1" in str(err.value)
