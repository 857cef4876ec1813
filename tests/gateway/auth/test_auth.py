"""Guests, sign-up (keeping guest sessions), login, cookies, CSRF and API keys."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx

from tests.support.platform import Patient, make_key


def test_guest_cookie_is_httponly_and_csrf_readable(gateway_url: str) -> None:
    r = httpx.post(f"{gateway_url}/api/auth/guest")
    assert r.status_code == 201
    cookies = r.headers.get_list("set-cookie")
    session_cookie = next(c for c in cookies if c.startswith("medchat_session="))
    csrf_cookie = next(c for c in cookies if c.startswith("medchat_csrf="))
    assert "HttpOnly" in session_cookie and "SameSite=lax" in session_cookie
    assert "HttpOnly" not in csrf_cookie
    assert r.json()["user"]["is_guest"] is True


def test_writes_need_the_csrf_token(new_guest: Callable[[], Patient]) -> None:
    p = new_guest()
    r = p.client.post("/api/sessions", json={})
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
    assert p.post("/api/sessions", json={}).status_code == 201
    assert p.client.get("/api/sessions").status_code == 200  # reads do not


def test_guest_signs_up_and_keeps_sessions(new_guest: Callable[[], Patient]) -> None:
    p = new_guest()
    sid = p.post("/api/sessions", json={"title": "头痛"}).json()["id"]
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    r = p.post("/api/auth/signup", json={"email": email, "password": "correct horse"})
    assert r.status_code == 201, r.text
    assert r.json()["user"]["is_guest"] is False
    p.csrf = r.json()["csrf_token"]
    assert p.get(f"/api/sessions/{sid}").status_code == 200

    # Log in from a fresh browser: the same sessions.
    with httpx.Client(base_url=str(p.client.base_url)) as other:
        bad = other.post("/api/auth/login", json={"email": email, "password": "wrong pass"})
        assert bad.status_code == 401 and bad.json()["error"]["code"] == "invalid_credentials"
        ok = other.post("/api/auth/login", json={"email": email, "password": "correct horse"})
        assert ok.status_code == 200
        assert [s["id"] for s in other.get("/api/sessions").json()["data"]] == [sid]


def test_signup_rejects_taken_and_malformed(new_guest: Callable[[], Patient]) -> None:
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    assert (
        new_guest()
        .post("/api/auth/signup", json={"email": email, "password": "12345678"})
        .status_code
        == 201
    )
    taken = new_guest().post("/api/auth/signup", json={"email": email, "password": "12345678"})
    assert taken.status_code == 409 and taken.json()["error"]["param"] == "email"
    short = new_guest().post("/api/auth/signup", json={"phone": "13800000000", "password": "1"})
    assert short.status_code == 422 and short.json()["error"]["param"] == "password"


def test_logout_ends_the_login(new_guest: Callable[[], Patient]) -> None:
    p = new_guest()
    assert p.post("/api/auth/logout").status_code == 204
    assert p.get("/api/auth/me").status_code == 401


def test_api_keys(gateway_url: str, database_url: str) -> None:
    admin_key = make_key(database_url, "admin")
    integrator_key = make_key(database_url, "integrator")
    admin = httpx.Client(base_url=gateway_url, headers={"Authorization": f"Bearer {admin_key}"})
    integrator = httpx.Client(
        base_url=gateway_url, headers={"Authorization": f"Bearer {integrator_key}"}
    )
    # API keys need no CSRF token (no cookies involved).
    assert integrator.post("/api/sessions", json={}).status_code == 201
    assert integrator.get("/api/admin/keys").status_code == 403
    created = admin.post("/api/admin/keys", json={"name": "partner", "role": "integrator"})
    assert created.status_code == 201
    new_key = created.json()["key"]
    assert new_key.startswith("mk-") and created.json()["prefix"] == new_key[:10]
    listed = admin.get("/api/admin/keys").json()
    assert all("key" not in k and "key_hash" not in k for k in listed)
    partner = httpx.Client(base_url=gateway_url, headers={"Authorization": f"Bearer {new_key}"})
    assert partner.get("/api/sessions").status_code == 200
    assert admin.delete(f"/api/admin/keys/{created.json()['id']}").status_code == 204
    revoked = partner.get("/api/sessions")
    assert revoked.status_code == 401 and "revoked" in revoked.json()["error"]["message"]
    garbage = httpx.get(f"{gateway_url}/api/sessions", headers={"Authorization": "Bearer x"})
    assert garbage.status_code == 401
    for c in (admin, integrator, partner):
        c.close()


def test_admin_manages_users(
    gateway_url: str, database_url: str, new_guest: Callable[[], Patient]
) -> None:
    admin = httpx.Client(
        base_url=gateway_url,
        headers={"Authorization": f"Bearer {make_key(database_url, 'admin')}"},
    )
    p = new_guest()
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    user_id = p.post("/api/auth/signup", json={"email": email, "password": "12345678"}).json()[
        "user"
    ]["id"]
    listed = admin.get("/api/admin/users", params={"limit": 200}).json()
    assert any(u["id"] == user_id for u in listed) and not any(u["is_guest"] for u in listed)
    changed = admin.patch(f"/api/admin/users/{user_id}", json={"role": "integrator"})
    assert changed.status_code == 200 and changed.json()["role"] == "integrator"
    assert (
        admin.patch(f"/api/admin/users/{uuid.uuid4()}", json={"role": "admin"}).status_code == 404
    )
    # Patients cannot reach admin routes.
    assert p.client.get("/api/admin/users").status_code == 403
    admin.close()
