"""Uploaded files in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW…).

Credentials come from boto3's own chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile,
an instance or pod role): they never pass through the settings. An upload is an S3 multipart
upload whose parts are sent as they fill, so memory holds one part at most; the object exists
only once CompleteMultipartUpload (or, for a file smaller than one part, a single PutObject)
has succeeded, and a discarded upload is aborted, leaving neither an object nor an incomplete
upload behind."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.response import StreamingBody

from services.core.settings import PlatformSettings

from .storage import READ_BYTES, check_file_id

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

# S3's smallest part is 5 MiB (the last excepted): 8 MiB keeps the request count of a 1 GB
# upload at 128 and the memory of one upload at 8 MiB plus one incoming slice.
PART_BYTES = 8 << 20
_MISSING = {"NoSuchKey", "404", "NotFound"}


def make_client(settings: PlatformSettings) -> S3Client:
    config = Config(
        s3={"addressing_style": settings.s3_addressing_style},
        # boto3 >= 1.36 adds CRC checksums to every upload by default, which several
        # S3-compatible servers reject; the gateway records its own SHA-256 anyway.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"mode": "standard"},
    )
    return boto3.client(
        "s3",
        # Empty is unset (compose passes unset variables as ""): AWS, and boto3's own region.
        endpoint_url=settings.s3_endpoint_url or None,
        region_name=settings.s3_region or None,
        config=config,
    )


def _missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in _MISSING


class S3Store:
    def __init__(self, client: S3Client, bucket: str, prefix: str, cache_dir: Path):
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        # Local copies for the worker (validation, the trainer): under MEDCHAT_FILES_DIR,
        # the volume trainer pods share on Kubernetes.
        self.cache_dir = cache_dir

    @classmethod
    def from_settings(cls, settings: PlatformSettings) -> S3Store:
        assert settings.s3_bucket is not None  # the settings refuse s3 without a bucket
        return cls(
            make_client(settings),
            settings.s3_bucket,
            settings.s3_prefix,
            settings.files_dir / "cache",
        )

    def key(self, file_id: str) -> str:
        return f"{self.prefix}{check_file_id(file_id)}.jsonl"

    def begin(self, file_id: str) -> _MultipartPending:
        return _MultipartPending(self.client, self.bucket, self.key(file_id))

    def delete(self, file_id: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.key(file_id))

    def local_path(self, file_id: str) -> None:
        return None

    def open_content(self, file_id: str) -> Iterator[bytes]:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.key(file_id))["Body"]
        except ClientError as exc:
            if _missing(exc):
                raise FileNotFoundError(file_id) from exc
            raise
        return _stream(body)

    @contextmanager
    def local_copy(self, file_id: str) -> Iterator[Path]:
        """Downloaded to a name of its own (two jobs may use one file at once), removed when
        the caller is done."""
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        path = self.cache_dir / f"{check_file_id(file_id)}-{uuid.uuid4().hex[:12]}.jsonl"
        try:
            try:
                self.client.download_file(self.bucket, self.key(file_id), str(path))
            except ClientError as exc:
                if _missing(exc):
                    raise FileNotFoundError(file_id) from exc
                raise
            yield path
        finally:
            path.unlink(missing_ok=True)


def _stream(body: StreamingBody) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(READ_BYTES)
    finally:
        body.close()  # a client that left mid-download frees the connection


class _MultipartPending:
    """The multipart upload starts with the first full part; a file smaller than one part
    is sent whole by `complete`."""

    def __init__(self, client: S3Client, bucket: str, key: str):
        self.client = client
        self.bucket = bucket
        self.key = key
        self.upload_id: str | None = None
        self.parts: list[CompletedPartTypeDef] = []
        self._buffer = bytearray()
        self._completed = False

    def write(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) >= PART_BYTES:
            self._send_part()

    def _send_part(self) -> None:
        if self.upload_id is None:
            created = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, ContentType="application/jsonl"
            )
            self.upload_id = created["UploadId"]
        number = len(self.parts) + 1
        data, self._buffer = bytes(self._buffer), bytearray()
        sent = self.client.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=data
        )
        self.parts.append({"ETag": sent["ETag"], "PartNumber": number})

    def complete(self) -> None:
        if self.upload_id is None:
            data, self._buffer = bytes(self._buffer), bytearray()
            self.client.put_object(
                Bucket=self.bucket, Key=self.key, Body=data, ContentType="application/jsonl"
            )
        else:
            if self._buffer:
                self._send_part()  # the last part may be smaller than 5 MiB
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": self.parts},
            )
        self._completed = True

    def discard(self) -> None:
        self._buffer = bytearray()
        if self._completed:
            self.client.delete_object(Bucket=self.bucket, Key=self.key)
        elif self.upload_id is not None:
            try:
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=self.key, UploadId=self.upload_id
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "NoSuchUpload":
                    raise  # else: already aborted
            self.upload_id = None
