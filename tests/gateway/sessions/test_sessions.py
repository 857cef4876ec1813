"""Session CRUD, ownership (404 for everyone else's ids), pagination, limits."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

from tests.support.platform import Patient


def test_crud_and_export(new_guest: Callable[[], Patient]) -> None:
    p = new_guest()
    created = p.post("/api/sessions", json={"title": "发烧三天"})
    assert created.status_code == 201
    sid = created.json()["id"]
    assert p.get(f"/api/sessions/{sid}").json()["messages"] == []
    renamed = p.patch(f"/api/sessions/{sid}", json={"title": "发烧"})
    assert renamed.status_code == 200 and renamed.json()["title"] == "发烧"
    export = p.get(f"/api/sessions/{sid}/export")
    assert export.status_code == 200 and "attachment" in export.headers["content-disposition"]
    assert export.json()["title"] == "发烧"
    assert p.delete(f"/api/sessions/{sid}").status_code == 204
    assert p.get(f"/api/sessions/{sid}").status_code == 404


def test_list_is_newest_first_and_paginated(new_guest: Callable[[], Patient]) -> None:
    p = new_guest()
    ids = [p.post("/api/sessions", json={"title": f"s{i}"}).json()["id"] for i in range(4)]
    first = p.get("/api/sessions", params={"limit": 3}).json()
    assert [s["id"] for s in first["data"]] == ids[::-1][:3] and first["has_more"]
    rest = p.get("/api/sessions", params={"limit": 3, "offset": 3}).json()
    assert [s["id"] for s in rest["data"]] == ids[:1] and not rest["has_more"]


def test_session_limit(new_guest: Callable[[], Patient]) -> None:
    p = new_guest()
    for _ in range(5):
        assert p.post("/api/sessions", json={}).status_code == 201
    over = p.post("/api/sessions", json={})
    assert over.status_code == 409 and over.json()["error"]["code"] == "too_many_sessions"


def test_other_users_sessions_are_404_on_every_route(new_guest: Callable[[], Patient]) -> None:
    owner, intruder = new_guest(), new_guest()
    sid = owner.post("/api/sessions", json={"title": "私密"}).json()["id"]
    attempts = [
        intruder.get(f"/api/sessions/{sid}"),
        intruder.get(f"/api/sessions/{sid}/export"),
        intruder.patch(f"/api/sessions/{sid}", json={"title": "x"}),
        intruder.delete(f"/api/sessions/{sid}"),
    ]
    for r in attempts:
        assert r.status_code == 404, r.request.url
        assert r.json()["error"]["code"] == "not_found"
    unknown = intruder.get(f"/api/sessions/{uuid.uuid4()}")
    assert unknown.json() == attempts[0].json()  # indistinguishable from a missing id
    assert owner.get(f"/api/sessions/{sid}").json()["title"] == "私密"
    assert intruder.get("/api/sessions").json()["data"] == []


def test_unauthenticated_and_oversized(gateway_url: str, new_guest: Callable[[], Patient]) -> None:
    import httpx

    assert httpx.get(f"{gateway_url}/api/sessions").status_code == 401
    p = new_guest()
    big = p.client.post(
        "/api/sessions",
        content=b"{" + b" " * 70_000 + b"}",
        headers={"content-type": "application/json", "X-CSRF-Token": p.csrf},
    )
    assert big.status_code == 413 and big.json()["error"]["code"] == "payload_too_large"


def test_nul_characters_are_a_clear_422(new_guest: Callable[[], Patient]) -> None:
    p = new_guest()
    r = p.post("/api/sessions", json={"title": "a\u0000b"})
    assert r.status_code == 422 and "NUL" in r.json()["error"]["message"]
    sid = p.post("/api/sessions", json={}).json()["id"]
    r = p.post(f"/api/sessions/{sid}/messages", json={"content": "x\u0000", "stream": False})
    assert r.status_code == 422 and r.json()["error"]["param"] == "content"


def test_oversized_chunked_body_is_413(new_guest: Callable[[], Patient]) -> None:
    # No Content-Length: the limit is enforced while the body arrives.
    p = new_guest()

    def body() -> Iterator[bytes]:
        yield b'{"title": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}'

    r = p.client.post(
        "/api/sessions",
        content=body(),
        headers={"content-type": "application/json", "X-CSRF-Token": p.csrf},
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
