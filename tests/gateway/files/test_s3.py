"""The S3 file store against an S3-compatible server (moto's, over HTTP): uploads larger than
one part go up as multipart uploads and come back byte for byte; a refused or abandoned
upload leaves neither an object nor an open multipart upload."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
import pytest
from botocore.exceptions import ClientError
from pydantic import ValidationError

from services.core.settings import PlatformSettings
from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from services.store.files.s3 import PART_BYTES
from tests.support.datasets import GOOD_ROW, jsonl, upload
from tests.support.platform import make_key
from tests.support.s3 import S3Server, bucket_contents
from tests.support.servers import serve

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

LIMIT = 24 << 20  # three parts of 8 MiB
BOUNDARY = "b0undary"


@dataclass
class Bucketed:
    """A gateway whose files go to a bucket of its own."""

    admin: httpx.Client
    settings: GatewaySettings
    s3: S3Client

    @property
    def bucket(self) -> str:
        assert self.settings.s3_bucket is not None
        return self.settings.s3_bucket

    def contents(self) -> tuple[list[str], list[str]]:
        return bucket_contents(self.s3, self.bucket)

    def key(self, file_id: str) -> str:
        return f"{self.settings.s3_prefix}{file_id}.jsonl"


@pytest.fixture(scope="module")
def gw(s3: S3Server, s3_gateway_settings: GatewaySettings, database_url: str) -> Iterator[Bucketed]:
    settings = s3_gateway_settings.model_copy(
        update={"max_file_bytes": LIMIT, "s3_bucket": s3.new_bucket()}
    )
    headers = {"Authorization": f"Bearer {make_key(database_url, 'admin')}"}
    with (
        serve(create_app(settings)) as url,
        httpx.Client(base_url=url, headers=headers, timeout=120) as admin,
    ):
        yield Bucketed(admin, settings, s3.client())


def dataset(size: int) -> bytes:
    """About `size` bytes of valid rows, each different (a file of copies would hide
    misordered parts)."""
    rows = []
    total = 0
    i = 0
    while total < size:
        row = {
            "conversation": [
                {"role": "user", "content": f"第{i}位患者：头痛{i % 17}天了，伴有恶心。"},
                {"role": "assistant", "content": f"建议多休息，第{i}号方案，必要时就医。"},
            ]
        }
        line = json.dumps(row, ensure_ascii=False).encode() + b"\n"
        rows.append(line)
        total += len(line)
        i += 1
    return b"".join(rows)


def multipart(file_parts: Iterator[bytes]) -> Iterator[bytes]:
    """A multipart/form-data body sent as it is produced (no Content-Length)."""
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nfine-tune\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="x.jsonl"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    yield from file_parts
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def post_streamed(gw: Bucketed, body: Iterator[bytes]) -> httpx.Response:
    return gw.admin.post(
        "/v1/files",
        content=body,
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )


def wait_until(condition: str, check: Callable[[], object], timeout: float = 60) -> None:
    """Poll `check()` until it is true (a state to reach, not a timing to assert)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"never reached: {condition}"
        time.sleep(0.1)


def first_parts_then(gw: Bucketed, tail: Iterator[bytes]) -> Iterator[bytes]:
    """Valid rows past one part, then, once S3 shows the multipart upload open, `tail`."""
    yield dataset(PART_BYTES + (2 << 20))
    wait_until("a multipart upload is open", lambda: gw.contents()[1])
    yield from tail


def test_a_file_larger_than_a_part_round_trips_byte_for_byte(gw: Bucketed) -> None:
    data = dataset(20_000_000)
    r = upload(gw.admin, data, "big.jsonl")
    assert r.status_code == 200, r.text
    f = r.json()
    assert (f["bytes"], f["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
    assert f["rows"] == data.count(b"\n")

    head = gw.s3.head_object(Bucket=gw.bucket, Key=gw.key(f["id"]))
    assert head["ContentLength"] == len(data)
    parts = -(-len(data) // PART_BYTES)
    assert parts == 3 and head["ETag"].strip('"').endswith(f"-{parts}")  # a multipart object
    assert gw.contents() == ([gw.key(f["id"])], [])

    digest = hashlib.sha256()
    received = bytearray()
    with gw.admin.stream("GET", f"/v1/files/{f['id']}/content") as content:
        assert content.status_code == 200
        assert content.headers["content-length"] == str(len(data))
        assert content.headers["content-disposition"] == 'attachment; filename="big.jsonl"'
        for chunk in content.iter_raw():
            digest.update(chunk)
            received += chunk
    assert digest.hexdigest() == f["sha256"] and bytes(received) == data

    assert gw.admin.delete(f"/v1/files/{f['id']}").json()["deleted"]
    with pytest.raises(ClientError):
        gw.s3.head_object(Bucket=gw.bucket, Key=gw.key(f["id"]))
    assert gw.contents() == ([], [])
    assert gw.admin.get(f"/v1/files/{f['id']}/content").status_code == 404


def test_a_small_file_is_one_object_without_a_multipart_upload(gw: Bucketed) -> None:
    data = jsonl(GOOD_ROW, GOOD_ROW)
    f = upload(gw.admin, data).json()
    head = gw.s3.head_object(Bucket=gw.bucket, Key=gw.key(f["id"]))
    assert head["ContentLength"] == len(data) and "-" not in head["ETag"]
    assert gw.admin.get(f"/v1/files/{f['id']}/content").content == data
    gw.admin.delete(f"/v1/files/{f['id']}")
    assert gw.contents() == ([], [])


def test_an_invalid_line_after_the_first_parts_aborts_the_upload(gw: Bucketed) -> None:
    assert gw.contents() == ([], [])
    r = post_streamed(gw, multipart(first_parts_then(gw, iter([b"{oops\n", jsonl(GOOD_ROW)]))))
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_file", r.text
    assert gw.contents() == ([], [])  # no object, no open multipart upload


def test_the_size_limit_aborts_the_upload(gw: Bucketed) -> None:
    assert gw.contents() == ([], [])
    r = post_streamed(gw, multipart(first_parts_then(gw, iter([dataset(LIMIT)]))))
    assert r.status_code == 413 and r.json()["error"]["code"] == "file_too_large", r.text
    assert gw.contents() == ([], [])


def test_a_client_that_leaves_mid_upload_leaves_nothing(gw: Bucketed) -> None:
    class Gone(Exception):
        pass

    def leave() -> Iterator[bytes]:
        raise Gone
        yield b""  # a generator

    assert gw.contents() == ([], [])
    with pytest.raises(Gone):
        post_streamed(gw, multipart(first_parts_then(gw, leave())))
    # The gateway learns of the disconnect on its own schedule: wait for the abort.
    wait_until("the multipart upload is aborted", lambda: gw.contents() == ([], []))
    assert gw.contents() == ([], [])


def test_the_s3_store_needs_a_bucket_and_its_settings_hold_no_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ValidationError, match="MEDCHAT_S3_BUCKET"):
        PlatformSettings(files_backend="s3")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "never-shown")
    settings = PlatformSettings(files_backend="s3", s3_bucket="medchat-files")
    assert "never-shown" not in repr(settings) and "never-shown" not in str(settings.model_dump())
