"""The admin's choice of the model that serves patients, against emulated engines (TGI with
LORA_ADAPTERS, vLLM with runtime LoRA loading): refused unless the engine answers for the
model, audited, used by every gateway process, recorded on each answer. The same switch
against a real `transformers serve` and a really trained model is in
tests/gateway/finetune/test_training.py."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from services.core.registry import publish
from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from tests.support.engine_emulator import EmulatorHandle, run_emulator
from tests.support.platform import make_key
from tests.support.servers import serve, temporary_database

EMULATED = "disc-medllm-emulator"
ADAPTER = f"ft:{EMULATED}:med:ftjob-adapter1"  # what the engine was started with
UNLOADED = f"ft:{EMULATED}:other:ftjob-adapter2"
MERGED = f"ft:{EMULATED}:full:ftjob-merged1"
OTHER_PROFILE = f"ft:{EMULATED}:chatml:ftjob-generic1"
HEADACHE = [{"role": "user", "content": "头痛"}]


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry holding fine-tunes as the worker publishes them (files, not weights: the
    engine at the other end is emulated)."""
    root = tmp_path_factory.mktemp("models")
    staging = tmp_path_factory.mktemp("staging")
    for name, kind, profile in (
        (ADAPTER, "adapter", "disc-medllm"),
        (UNLOADED, "adapter", "disc-medllm"),
        (MERGED, "merged", "disc-medllm"),
        (OTHER_PROFILE, "adapter", "generic"),
    ):
        _, base, suffix, job = name.split(":")
        out = staging / job
        out.mkdir()
        marker = "adapter_config.json" if kind == "adapter" else "config.json"
        (out / marker).write_text(json.dumps({"base_model_name_or_path": base}))
        publish(root, out, base=base, suffix=suffix, job_id=job, kind=kind, profile=profile)  # type: ignore[arg-type]
    return root


@dataclass
class Stack:
    gateway: str
    engine: EmulatorHandle
    database_url: str
    settings: GatewaySettings

    def admin(self) -> httpx.Client:
        key = make_key(self.database_url, "admin")
        return httpx.Client(
            base_url=self.gateway, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )

    def choose(self, model: str) -> httpx.Response:
        with self.admin() as client:
            return client.put("/api/admin/serving", json={"model": model})

    def generation_requests(self) -> list[dict[str, Any]]:
        paths = ("/generate", "/generate_stream", "/v1/completions")
        return [r["body"] for r in self.engine.state()["requests"] if r["path"] in paths]


@pytest.fixture
def stack(
    gateway_settings: GatewaySettings, sp_dir: Path, models_dir: Path
) -> Iterator[Callable[..., AbstractContextManager[Stack]]]:
    """An emulated engine and a gateway with a database of its own (a serving choice made
    here stays here)."""

    @contextmanager
    def start(protocol: str, emulator: dict[str, Any], **settings: Any) -> Iterator[Stack]:
        with (
            temporary_database() as db,
            run_emulator(sp_dir, model_id=EMULATED, **emulator) as engine,
        ):
            merged = gateway_settings.model_copy(
                update={
                    "database_url": db,
                    "engine_url": engine.url,
                    "engine_protocol": protocol,
                    "engine_model": EMULATED,
                    "models_dir": models_dir,
                    **settings,
                }
            )
            with serve(create_app(merged)) as url:
                yield Stack(url, engine, db, merged)

    yield start


def _ask(gateway: str, content: str = "头痛三天了") -> dict[str, Any]:
    """A guest's question through the web chat; returns the stored answer."""
    with httpx.Client(base_url=gateway, timeout=30) as client:
        csrf = client.post("/api/auth/guest").json()["csrf_token"]
        headers = {"X-CSRF-Token": csrf}
        sid = client.post("/api/sessions", json={}, headers=headers).json()["id"]
        r = client.post(
            f"/api/sessions/{sid}/messages",
            headers=headers,
            json={"content": content, "stream": False},
        )
        assert r.status_code == 200, r.text
        message: dict[str, Any] = r.json()["message"]
        return message


def _stored_model(database_url: str, message_id: int) -> str | None:
    async def read() -> str | None:
        conn = await asyncpg.connect(database_url.replace("+asyncpg", ""))
        try:
            model: str | None = await conn.fetchval(
                "SELECT model FROM messages WHERE id = $1", message_id
            )
            return model
        finally:
            await conn.close()

    return asyncio.run(read())


def _engine_models(engine: EmulatorHandle) -> list[str]:
    return [m["id"] for m in httpx.get(f"{engine.url}/v1/models").json()["data"]]


def _serving(client: httpx.Client) -> list[str]:
    return [m["id"] for m in client.get("/v1/models").json()["data"] if m["serving"]]


def test_tgi_serves_a_declared_adapter_and_refuses_what_it_did_not_load(
    stack: Callable[..., AbstractContextManager[Stack]],
) -> None:
    adapters = f"{ADAPTER}=/data/models/ft/ftjob-adapter1"
    with stack("tgi", {"adapters": (ADAPTER,)}, engine_adapters=adapters) as s, s.admin() as admin:
        assert admin.get("/api/admin/serving").json()["model"] == EMULATED
        assert _serving(admin) == [EMULATED]

        r = s.choose("ft:nothing:here:ftjob-none")
        assert r.status_code == 400 and r.json()["error"]["code"] == "model_not_found"
        # TGI would answer an adapter it never loaded with the base model: refused up front.
        r = s.choose(UNLOADED)
        assert r.status_code == 409, r.text
        assert r.json()["error"]["code"] == "model_not_served"
        assert f"LORA_ADAPTERS={UNLOADED}=" in r.json()["error"]["message"]
        r = s.choose(MERGED)
        assert r.status_code == 409 and "--model-id" in r.json()["error"]["message"]
        r = s.choose(OTHER_PROFILE)
        assert r.status_code == 409 and "'generic'" in r.json()["error"]["message"]
        assert admin.get("/api/admin/serving").json()["model"] == EMULATED  # nothing changed
        # Naming a model TGI did not load in an API call is refused the same way (TGI would
        # answer with the base model); a name that is not listed gets the serving model.
        r = admin.post("/v1/chat/completions", json={"model": UNLOADED, "messages": HEADACHE})
        assert r.status_code == 409 and r.json()["error"]["code"] == "model_not_served"
        r = admin.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": HEADACHE})
        assert r.status_code == 200 and r.json()["model"] == EMULATED

        s.engine.control(reset=True)
        r = s.choose(ADAPTER)
        assert r.status_code == 200, r.text
        assert r.json()["model"] == ADAPTER and r.json()["chosen_by"]
        # The canary went through the adapter before the choice was stored.
        probe = s.generation_requests()
        assert probe and probe[-1]["parameters"]["adapter_id"] == ADAPTER
        assert _serving(admin) == [ADAPTER]
        assert httpx.get(f"{s.gateway}/readyz").json()["serving"] == ADAPTER

        s.engine.control(reset=True)
        answer = _ask(s.gateway)
        (sent,) = s.generation_requests()
        assert sent["parameters"]["adapter_id"] == ADAPTER
        assert _stored_model(s.database_url, answer["id"]) == ADAPTER

        # Another gateway process on the same database picks the choice up.
        replica = s.settings.model_copy(update={"serving_refresh_s": 0.0})
        with serve(create_app(replica)) as other:
            s.engine.control(reset=True)
            _ask(other)
            (sent,) = s.generation_requests()
            assert sent["parameters"]["adapter_id"] == ADAPTER

            # Back to the engine's own model: no adapter asked for, on either process.
            assert s.choose(EMULATED).status_code == 200
            s.engine.control(reset=True)
            _ask(other)
            _ask(s.gateway)
            assert [b["parameters"].get("adapter_id") for b in s.generation_requests()] == [
                None,
                None,
            ]

        events = admin.get("/api/admin/audit", params={"action": "admin.model_switch"})
        switches = [(e["details"]["from"], e["details"]["to"]) for e in events.json()["data"]]
        assert switches == [(ADAPTER, EMULATED), (EMULATED, ADAPTER)]  # newest first


def test_vllm_loads_the_chosen_adapter_at_runtime(
    stack: Callable[..., AbstractContextManager[Stack]],
) -> None:
    with (
        stack(
            "openai",
            {"runtime_lora": True},
            engine_runtime_lora=True,
            engine_adapter_check_s=0.2,
        ) as s,
        s.admin() as admin,
    ):
        assert ADAPTER not in _engine_models(s.engine)
        # An API call may name a listed fine-tune (an evaluation of it before it serves
        # patients): it answers that call only.
        r = admin.post("/v1/chat/completions", json={"model": ADAPTER, "messages": HEADACHE})
        assert r.status_code == 200, r.text
        assert r.json()["model"] == ADAPTER
        assert s.generation_requests()[-1]["model"] == ADAPTER
        s.engine.control(reset=True)
        _ask(s.gateway)
        (sent,) = s.generation_requests()
        assert sent["model"] == EMULATED  # patients: still the engine's own model

        r = s.choose(ADAPTER)
        assert r.status_code == 200, r.text
        assert ADAPTER in _engine_models(s.engine)  # through /v1/load_lora_adapter
        assert s.choose(ADAPTER).status_code == 200  # choosing it again: already loaded, fine

        s.engine.control(reset=True)
        r = admin.post(
            "/v1/chat/completions",
            json={"model": "anything", "messages": [{"role": "user", "content": "头痛"}]},
        )
        assert r.status_code == 200, r.text
        assert r.json()["model"] == ADAPTER  # the model that answered, as OpenAI reports it
        (sent,) = s.generation_requests()
        assert sent["model"] == ADAPTER

        # A restarted vLLM has forgotten runtime-loaded adapters: the gateway loads the
        # chosen one again by itself.
        forget = {"lora_name": ADAPTER}
        assert httpx.post(f"{s.engine.url}/v1/unload_lora_adapter", json=forget).is_success
        deadline = time.monotonic() + 30
        while ADAPTER not in _engine_models(s.engine):
            assert time.monotonic() < deadline, "the adapter was not loaded again"
            time.sleep(0.1)


def test_vllm_without_the_adapter_refuses_with_how_to_serve_it(
    stack: Callable[..., AbstractContextManager[Stack]],
) -> None:
    with stack("openai", {"lora_modules": (ADAPTER,)}) as s, s.admin() as admin:
        assert s.choose(ADAPTER).status_code == 200  # started with --lora-modules
        r = s.choose(UNLOADED)
        assert r.status_code == 409, r.text
        message = r.json()["error"]["message"]
        assert "does not exist" in message and f"--lora-modules {UNLOADED}=" in message
        assert admin.get("/api/admin/serving").json()["model"] == ADAPTER


def test_only_admins_choose(
    stack: Callable[..., AbstractContextManager[Stack]],
) -> None:
    with stack("tgi", {}) as s:
        for role in ("integrator", "patient"):
            headers = {"Authorization": f"Bearer {make_key(s.database_url, role)}"}
            with httpx.Client(base_url=s.gateway, headers=headers) as client:
                assert client.get("/api/admin/serving").status_code == 403
                r = client.put("/api/admin/serving", json={"model": EMULATED})
                assert r.status_code == 403
        with httpx.Client(base_url=s.gateway) as anonymous:
            assert anonymous.put("/api/admin/serving", json={"model": EMULATED}).status_code == 401


def test_cli_shows_and_switches_the_serving_model(
    stack: Callable[..., AbstractContextManager[Stack]],
) -> None:
    adapters = f"{ADAPTER}=/data/models/ft/ftjob-adapter1"
    with stack("tgi", {"adapters": (ADAPTER,)}, engine_adapters=adapters) as s:
        env = {**os.environ, "MEDCHAT_URL": s.gateway}
        env["MEDCHAT_API_KEY"] = make_key(s.database_url, "admin")

        def medchat(*args: str) -> subprocess.CompletedProcess[str]:
            command = [sys.executable, "-m", "services.cli", "finetune", "serve", *args]
            return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)

        shown = medchat()
        assert shown.returncode == 0 and f"serving {EMULATED} (the engine's own" in shown.stdout
        assert f"serving {ADAPTER}" in medchat(ADAPTER).stdout
        refused = medchat(UNLOADED)
        assert refused.returncode == 1 and "model_not_served" in refused.stderr
        assert f"serving {ADAPTER}" in medchat().stdout
