"""Chat answers are rate limited per user (browser) and per key (API), with the headers
integrators expect; a refused question is not stored."""

from __future__ import annotations

import httpx

from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from tests.support.engine_emulator import EmulatorHandle
from tests.support.platform import Patient
from tests.support.servers import serve


def test_patient_limit(gateway_settings: GatewaySettings, engine: EmulatorHandle) -> None:
    settings = gateway_settings.model_copy(update={"rate_limit_patient_per_minute": 3})
    with serve(create_app(settings)) as url:
        client = httpx.Client(base_url=url, timeout=30)
        p = Patient(client, client.post("/api/auth/guest").json()["csrf_token"])
        sid = p.post("/api/sessions", json={}).json()["id"]
        answers = [
            p.post(f"/api/sessions/{sid}/messages", json={"content": f"问{i}", "stream": False})
            for i in range(4)
        ]
        assert [r.status_code for r in answers] == [200, 200, 200, 429]
        assert [r.headers["x-ratelimit-remaining"] for r in answers[:3]] == ["2", "1", "0"]
        refused = answers[3]
        assert refused.json()["error"]["code"] == "rate_limited"
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["x-ratelimit-limit"] == "3"
        contents = [m["content"] for m in p.get(f"/api/sessions/{sid}").json()["messages"]]
        assert "问3" not in contents
        # Reading is not limited.
        assert p.get(f"/api/sessions/{sid}").status_code == 200
        # Another patient has a bucket of their own.
        other = Patient(
            client2 := httpx.Client(base_url=url, timeout=30),
            client2.post("/api/auth/guest").json()["csrf_token"],
        )
        sid2 = other.post("/api/sessions", json={}).json()["id"]
        assert (
            other.post(
                f"/api/sessions/{sid2}/messages", json={"content": "你好", "stream": False}
            ).status_code
            == 200
        )


def test_answers_longer_than_the_engine_s_context_are_a_clear_400(
    gateway_settings: GatewaySettings, engine: EmulatorHandle
) -> None:
    """An engine context (the emulator's 4096) no larger than the answer length the gateway
    asks for leaves no room for a prompt: a 400 naming the setting, never a 500."""
    settings = gateway_settings.model_copy(update={"max_new_tokens": 4096})
    with serve(create_app(settings)) as url:
        client = httpx.Client(base_url=url, timeout=30)
        p = Patient(client, client.post("/api/auth/guest").json()["csrf_token"])
        sid = p.post("/api/sessions", json={}).json()["id"]
        r = p.post(f"/api/sessions/{sid}/messages", json={"content": "头痛", "stream": False})
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert error["code"] == "max_new_tokens_too_large"
        assert "MEDCHAT_MAX_NEW_TOKENS" in error["message"] and "4096" in error["message"]
