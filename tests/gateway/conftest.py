"""Gateway fixtures: a real Postgres database, real Redis, the app under real uvicorn."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from tests.support.servers import serve, temporary_database

REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with temporary_database() as url:
        yield url


@pytest.fixture(scope="session")
def gateway_settings(database_url: str) -> GatewaySettings:
    return GatewaySettings(
        environment="test",
        database_url=database_url,
        redis_url=REDIS_URL,
        max_body_bytes=64 * 1024,
        max_sessions_per_user=5,
    )


@pytest.fixture(scope="session")
def gateway_url(gateway_settings: GatewaySettings) -> Iterator[str]:
    with serve(create_app(gateway_settings)) as url:
        yield url


@dataclass
class Patient:
    """A browser: cookies kept by the client, the CSRF token echoed on writes."""

    client: httpx.Client
    csrf: str

    def post(self, path: str, **kw: object) -> httpx.Response:
        return self.client.post(path, headers={"X-CSRF-Token": self.csrf}, **kw)  # type: ignore[arg-type]

    def patch(self, path: str, **kw: object) -> httpx.Response:
        return self.client.patch(path, headers={"X-CSRF-Token": self.csrf}, **kw)  # type: ignore[arg-type]

    def delete(self, path: str) -> httpx.Response:
        return self.client.delete(path, headers={"X-CSRF-Token": self.csrf})

    def get(self, path: str, **kw: object) -> httpx.Response:
        return self.client.get(path, **kw)  # type: ignore[arg-type]


@pytest.fixture
def new_guest(gateway_url: str) -> Iterator[Callable[[], Patient]]:
    clients: list[httpx.Client] = []

    def make() -> Patient:
        client = httpx.Client(base_url=gateway_url, timeout=30)
        clients.append(client)
        r = client.post("/api/auth/guest")
        assert r.status_code == 201, r.text
        return Patient(client, r.json()["csrf_token"])

    yield make
    for c in clients:
        c.close()
