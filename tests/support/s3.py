"""An S3-compatible server for the tests: moto's, in a process of its own, spoken to over
HTTP by boto3 exactly as a deployment speaks to AWS S3 or MinIO."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import httpx

from tests.support.servers import free_port, stop_process

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

REGION = "us-east-1"
# moto accepts any credentials; boto3 finds these in the environment, as in a deployment.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "medchat-test",
    "AWS_SECRET_ACCESS_KEY": "medchat-test-secret",
    "AWS_EC2_METADATA_DISABLED": "true",  # never probe an instance role
    "AWS_CONFIG_FILE": "/nonexistent",  # nor the developer's own profiles
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
}


@dataclass
class S3Server:
    url: str

    def client(self) -> S3Client:
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def new_bucket(self) -> str:
        name = f"medchat-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name


def bucket_contents(client: S3Client, bucket: str) -> tuple[list[str], list[str]]:
    """(object keys, keys of multipart uploads still open) in `bucket`."""
    keys = [
        o["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in page.get("Contents", [])
    ]
    uploads = [u["Key"] for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
    return keys, uploads


@contextmanager
def s3_server(log_path: Path, timeout_s: float = 30) -> Iterator[S3Server]:
    """`moto_server` on a free port; yields it once it answers."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                httpx.get(f"{url}/moto-api/data.json", timeout=1)
                break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                output = log_path.read_text(errors="replace")[-4000:]
                raise RuntimeError(f"moto_server did not start:\n{output}")
            time.sleep(0.1)
        yield S3Server(url)
    finally:
        stop_process(proc)
