"""Readiness and the startup tokenization check against engines that agree or not, and the
OpenAI-compatible engine protocol."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from tests.support.engine_emulator import EmulatorHandle, run_emulator
from tests.support.platform import REPLY, Patient
from tests.support.servers import serve


@pytest.fixture(scope="module")
def foreign_engine(sp_dummy_prefix_dir: Path) -> Iterator[EmulatorHandle]:
    """An engine whose tokenizer splits text differently (Llama-style dummy prefix)."""
    with run_emulator(sp_dummy_prefix_dir, max_input_tokens=1024, max_total_tokens=2048) as e:
        yield e


def gateway_for(settings: GatewaySettings, **changes: object) -> Iterator[str]:
    with serve(create_app(settings.model_copy(update=changes))) as url:
        yield url


def guest(url: str) -> Patient:
    client = httpx.Client(base_url=url, timeout=30)
    return Patient(client, client.post("/api/auth/guest").json()["csrf_token"])


def test_ready_when_everything_agrees(gateway_url: str) -> None:
    r = httpx.get(f"{gateway_url}/readyz")
    assert r.status_code == 200
    assert r.json()["checks"] == {
        "postgres": "ok",
        "redis": "ok",
        "engine": "ok",
        "engine_tokenization": "ok",
    }


def test_mismatching_engine_is_refused(
    gateway_settings: GatewaySettings, foreign_engine: EmulatorHandle
) -> None:
    for url in gateway_for(gateway_settings, engine_url=foreign_engine.url):
        ready = httpx.get(f"{url}/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["engine_tokenization"] == "mismatch"
        assert "first difference at token" in ready.json()["engine_detail"]
        p = guest(url)
        sid = p.post("/api/sessions", json={}).json()["id"]
        r = p.post(f"/api/sessions/{sid}/messages", json={"content": "头痛", "stream": False})
        assert r.status_code == 503 and r.json()["error"]["code"] == "engine_mismatch"
        assert foreign_engine.state()["requests"][-1]["path"] != "/generate_stream"


def test_mismatch_can_be_tolerated(
    gateway_settings: GatewaySettings, foreign_engine: EmulatorHandle
) -> None:
    for url in gateway_for(
        gateway_settings, engine_url=foreign_engine.url, engine_tokenization_check="warn"
    ):
        assert httpx.get(f"{url}/readyz").status_code == 200
        p = guest(url)
        sid = p.post("/api/sessions", json={}).json()["id"]
        r = p.post(f"/api/sessions/{sid}/messages", json={"content": "头痛", "stream": False})
        assert r.status_code == 200


def test_engine_down_is_not_ready_and_chat_says_503(gateway_settings: GatewaySettings) -> None:
    for url in gateway_for(gateway_settings, engine_url="http://127.0.0.1:1", engine_retries=0):
        ready = httpx.get(f"{url}/readyz").json()
        assert ready["checks"]["engine"] == "down" and not ready["ready"]
        p = guest(url)
        sid = p.post("/api/sessions", json={}).json()["id"]
        r = p.post(f"/api/sessions/{sid}/messages", json={"content": "头痛", "stream": False})
        assert r.status_code == 503 and r.headers["retry-after"]
        assert r.json()["error"]["code"] == "engine_unavailable"
        assert p.get(f"/api/sessions/{sid}").json()["messages"][0]["content"] == "头痛"


def test_openai_protocol_engine(gateway_settings: GatewaySettings, engine: EmulatorHandle) -> None:
    model = httpx.get(f"{engine.url}/v1/models").json()["data"][0]["id"]
    for url in gateway_for(gateway_settings, engine_protocol="openai", engine_model=model):
        # No tokenize endpoint in that protocol: the prompt token count is compared instead.
        ready = httpx.get(f"{url}/readyz").json()
        assert ready["checks"]["engine_tokenization"] == "ok"
        assert "count only" in ready["engine_detail"]
        p = guest(url)
        sid = p.post("/api/sessions", json={}).json()["id"]
        r = p.post(f"/api/sessions/{sid}/messages", json={"content": "咳嗽", "stream": False})
        assert r.status_code == 200, r.text
        assert r.json()["message"]["content"] == "".join(REPLY)
        calls = [c for c in engine.state()["requests"] if c["path"] == "/v1/completions"]
        assert calls[-1]["body"]["prompt"].endswith("咳嗽<reserved_103>")


def test_openai_protocol_count_mismatch_is_refused(
    gateway_settings: GatewaySettings, foreign_engine: EmulatorHandle
) -> None:
    model = httpx.get(f"{foreign_engine.url}/v1/models").json()["data"][0]["id"]
    for url in gateway_for(
        gateway_settings,
        engine_protocol="openai",
        engine_url=foreign_engine.url,
        engine_model=model,
    ):
        ready = httpx.get(f"{url}/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["engine_tokenization"] == "mismatch"
        assert "prompt tokens" in ready.json()["engine_detail"]


def test_wrong_engine_model_name_is_explained(
    gateway_settings: GatewaySettings, engine: EmulatorHandle
) -> None:
    for url in gateway_for(gateway_settings, engine_protocol="openai", engine_model="nope"):
        p = guest(url)
        sid = p.post("/api/sessions", json={}).json()["id"]
        r = p.post(f"/api/sessions/{sid}/messages", json={"content": "头痛", "stream": False})
        # The patient is told plainly; the operator finds what to change on /readyz.
        assert r.status_code == 503 and r.json()["error"]["code"] == "engine_mismatch"
        assert "MEDCHAT_ENGINE_MODEL" not in r.text and "request id" in r.text
        assert "MEDCHAT_ENGINE_MODEL" in httpx.get(f"{url}/readyz").json()["engine_detail"]


def test_prefill_ids_match_tokenize(engine: EmulatorHandle, sp_dir: Path) -> None:
    # Where TGI has no /tokenize (no fast tokenizer, as with Baichuan) the check falls back to
    # the prompt ids a one-token generation reports; both must agree with the format module.
    import asyncio

    from services.core.chatformat import chat_format, load_tokenizer
    from services.gateway.engine import TGIClient
    from services.gateway.engine.canary import CANARY

    prompt = chat_format(load_tokenizer(sp_dir)).render_prompt(CANARY, 10_000)

    async def both() -> tuple[list[int] | None, list[int]]:
        client = TGIClient(engine.url)
        try:
            return await client.tokenize(prompt.text), await client.prefill_ids(prompt.text)
        finally:
            await client.close()

    tokenized, prefilled = asyncio.run(both())
    assert tokenized == prefilled == prompt.input_ids
