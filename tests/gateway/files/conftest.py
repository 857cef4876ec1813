"""The Files API tests run against both stores: the directory and an S3-compatible bucket."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
import pytest

from services.gateway.config import GatewaySettings
from tests.support.platform import make_key
from tests.support.s3 import S3Server, bucket_contents

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@dataclass
class Backend:
    name: str
    url: str
    settings: GatewaySettings
    s3: S3Client | None = None

    def stored_names(self) -> set[str]:
        """Everything the store holds, partial uploads included: files under files_dir;
        with a bucket also its objects (named without the prefix) and open multipart
        uploads (`multipart:<key>`)."""
        root = self.settings.files_dir
        names = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
        if self.s3 is not None:
            assert self.settings.s3_bucket is not None
            keys, uploads = bucket_contents(self.s3, self.settings.s3_bucket)
            names |= {k.removeprefix(self.settings.s3_prefix) for k in keys}
            names |= {f"multipart:{k}" for k in uploads}
        return names


@pytest.fixture(scope="module", params=["dir", "s3"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "dir":
        return Backend(
            "dir",
            request.getfixturevalue("gateway_url"),
            request.getfixturevalue("gateway_settings"),
        )
    s3: S3Server = request.getfixturevalue("s3")
    return Backend(
        "s3",
        request.getfixturevalue("s3_gateway_url"),
        request.getfixturevalue("s3_gateway_settings"),
        s3.client(),
    )


@pytest.fixture
def admin(backend: Backend, database_url: str) -> Iterator[httpx.Client]:
    """An admin's API client of the gateway that stores files in `backend`."""
    headers = {"Authorization": f"Bearer {make_key(database_url, 'admin')}"}
    with httpx.Client(base_url=backend.url, headers=headers, timeout=60) as client:
        yield client
