"""Gateway fixtures: a real Postgres database, real Redis, the app under real uvicorn."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from services.gateway.db import make_engine, make_sessionmaker
from services.store import apikeys
from tests.support.engine_emulator import EmulatorHandle, run_emulator
from tests.support.s3 import CREDENTIALS, REGION, S3Server, s3_server
from tests.support.servers import PrivateRedis, private_redis, serve, temporary_database

REDIS_URL = "redis://127.0.0.1:6379/15"


def broker_url() -> str:
    """The Celery broker of this test process: a Redis database of its own per xdist worker,
    so parallel test processes never take each other's fine-tune tasks."""
    index = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    return f"redis://127.0.0.1:6379/{13 - index % 4}"


MAX_FILE_BYTES = 2 << 20
REPLY = ["您好", "，", "建议", "多", "休息", "。"]
ENGINE_DEFAULTS = {"reply_tokens": REPLY, "first_token_delay": 0.0, "token_delay": 0.005}


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with temporary_database() as url:
        yield url


@pytest.fixture(scope="session")
def engine(sp_dir: Path) -> Iterator[EmulatorHandle]:
    """The remote inference engine, emulated in its own process (TGI native API)."""
    with run_emulator(sp_dir, max_input_tokens=1024, max_total_tokens=2048) as handle:
        yield handle


@pytest.fixture(autouse=True)
def _engine_defaults(request: pytest.FixtureRequest) -> None:
    # Tests that script the engine start from its defaults.
    if "engine" in request.fixturenames:
        request.getfixturevalue("engine").control(reset=True, mode="ok", **ENGINE_DEFAULTS)


@pytest.fixture(scope="session")
def gateway_settings(
    database_url: str,
    sp_dir: Path,
    engine: EmulatorHandle,
    tmp_path_factory: pytest.TempPathFactory,
) -> GatewaySettings:
    return GatewaySettings(
        environment="test",
        database_url=database_url,
        redis_url=REDIS_URL,
        broker_url=broker_url(),
        engine_url=engine.url,
        engine_protocol="tgi",
        engine_first_token_timeout_s=2.0,
        engine_retries=1,
        tokenizer_path=sp_dir,
        max_new_tokens=256,
        max_body_bytes=64 * 1024,
        max_file_bytes=MAX_FILE_BYTES,
        files_dir=tmp_path_factory.mktemp("files"),
        models_dir=tmp_path_factory.mktemp("models"),
        max_sessions_per_user=5,
        session_lock_wait_s=10.0,
        # Limits are tested on their own (test_rate_limits); elsewhere they stay out of the way.
        rate_limit_patient_per_minute=100_000,
        rate_limit_guest_create_per_ip_per_hour=100_000,
        rate_limit_guest_chat_per_ip_per_minute=100_000,
        rate_limit_key_per_minute=100_000,
        # Revocations and usage counters visible at once (their batched forms are tested
        # on their own).
        auth_cache_s=0.0,
        usage_flush_s=0.0,
    )


@pytest.fixture(scope="session")
def gateway_url(gateway_settings: GatewaySettings) -> Iterator[str]:
    with serve(create_app(gateway_settings)) as url:
        yield url


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """An S3-compatible server (moto's, its own process); its credentials in this process's
    environment, where boto3 finds them (and worker processes inherit them)."""
    with (
        pytest.MonkeyPatch.context() as env,
        s3_server(tmp_path_factory.mktemp("s3") / "moto.log") as server,
    ):
        for name, value in CREDENTIALS.items():
            env.setenv(name, value)
        yield server


@pytest.fixture(scope="session")
def s3_gateway_settings(
    gateway_settings: GatewaySettings, s3: S3Server, tmp_path_factory: pytest.TempPathFactory
) -> GatewaySettings:
    """The gateway's settings with files in a bucket (files_dir holds only local copies)."""
    return gateway_settings.model_copy(
        update={
            "files_backend": "s3",
            "s3_bucket": s3.new_bucket(),
            "s3_endpoint_url": s3.url,
            "s3_region": REGION,
            "files_dir": tmp_path_factory.mktemp("s3-files"),
        }
    )


@pytest.fixture(scope="session")
def s3_gateway_url(s3_gateway_settings: GatewaySettings) -> Iterator[str]:
    with serve(create_app(s3_gateway_settings)) as url:
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

    def stream_answer(
        self, session_id: str, content: str
    ) -> AbstractContextManager[httpx.Response]:
        """POST a question and keep the SSE response open for reading."""
        return self.client.stream(
            "POST",
            f"/api/sessions/{session_id}/messages",
            json={"content": content, "stream": True},
            headers={"X-CSRF-Token": self.csrf},
        )


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


@pytest.fixture
def own_redis() -> Iterator[PrivateRedis]:
    """A Redis this test may stop and start (skipped where redis-server is missing)."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed: cannot take a private Redis down and up")
    with private_redis() as server:
        server.start()
        yield server


def make_key(database_url: str, role: str) -> str:
    """A new API key of `role`, created as `medchat apikey create` does."""

    async def create() -> str:
        engine = make_engine(database_url)
        async with make_sessionmaker(engine)() as db:
            _, key = await apikeys.create_api_key(db=db, name=f"test-{role}", role=role)
            await db.commit()
        await engine.dispose()
        return key

    return asyncio.run(create())


@pytest.fixture
def admin(gateway_url: str, database_url: str) -> Iterator[httpx.Client]:
    """An admin's API client."""
    headers = {"Authorization": f"Bearer {make_key(database_url, 'admin')}"}
    with httpx.Client(base_url=gateway_url, headers=headers, timeout=60) as client:
        yield client
