"""A message the format module still refuses to render (ControlTokenLeak: it would encode to
a control id) is answered 422 with a plain reason, kept in the session, and left out of the
dialogue, so the patient can go on; the OpenAI route answers 422 too. No 500."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from services.core.chatformat import ControlTokenLeak, Turn
from services.core.chatformat.render import MarkerFormat
from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from tests.support.platform import Patient, make_key
from tests.support.servers import serve

POISON = "☠ 一个无法表示的字符"


@pytest.fixture
def url(gateway_settings: GatewaySettings, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    original: Callable[..., Any] = MarkerFormat.render_prompt  # the disc-medllm profile's

    def render_prompt(self: MarkerFormat, turns: list[Turn], *args: Any, **kw: Any) -> Any:
        if any(POISON in t.content for t in turns):
            raise ControlTokenLeak("content encoded to control ids [0] after neutralization")
        return original(self, turns, *args, **kw)

    with serve(create_app(gateway_settings)) as url:
        monkeypatch.setattr(MarkerFormat, "render_prompt", render_prompt)  # after start-up
        yield url


def test_an_unrenderable_message_is_kept_and_refused(url: str) -> None:
    client = httpx.Client(base_url=url, timeout=30)
    p = Patient(client, client.post("/api/auth/guest").json()["csrf_token"])
    sid = p.post("/api/sessions", json={}).json()["id"]
    refused = p.post(f"/api/sessions/{sid}/messages", json={"content": POISON, "stream": False})
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "message_unrenderable" and "rephrase" in error["message"]
    stored = p.get(f"/api/sessions/{sid}").json()["messages"]
    assert [(m["role"], m["content"], m["status"]) for m in stored] == [("user", POISON, "failed")]
    # The session goes on: the refused message is no longer part of the dialogue.
    ok = p.post(f"/api/sessions/{sid}/messages", json={"content": "头痛", "stream": False})
    assert ok.status_code == 200, ok.text
    assert ok.json()["message"]["turns_used"] == 1


def test_the_openai_route_answers_422(url: str, database_url: str) -> None:
    key = make_key(database_url, "integrator")
    r = httpx.post(
        f"{url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "x", "messages": [{"role": "user", "content": POISON}]},
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "message_unrenderable"
