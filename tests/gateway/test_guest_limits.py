"""Guests need no credentials, so they are limited per client address too: new guests per
hour and chat turns per minute of all guests from one address; the address is the peer,
or, behind a trusted proxy only, the one X-Forwarded-For names."""

from __future__ import annotations

import secrets
from types import SimpleNamespace

import httpx
import pytest
from starlette.requests import Request

from services.gateway.app import create_app
from services.gateway.client_ip import client_ip, parse_networks
from services.gateway.config import GatewaySettings
from tests.support.platform import Patient
from tests.support.servers import serve


def new_address() -> str:
    """An address of the documentation range no other test or run uses: buckets live in
    the shared Redis for an hour."""
    return f"2001:db8::{secrets.token_hex(2)}:{secrets.token_hex(2)}"


def request_from(peer: str, forwarded: str | None, trusted: str) -> Request:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded is not None else []
    app = SimpleNamespace(state=SimpleNamespace(settings=SimpleNamespace(trusted_proxies=trusted)))
    return Request({"type": "http", "client": (peer, 1234), "headers": headers, "app": app})


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        ("198.51.100.9", None, "", "198.51.100.9"),
        # Not from a trusted proxy: the header is anyone's claim.
        ("198.51.100.9", "1.2.3.4", "", "198.51.100.9"),
        ("198.51.100.9", "1.2.3.4", "10.0.0.0/8", "198.51.100.9"),
        # From a trusted proxy: the last address it did not add itself.
        ("10.0.0.2", "198.51.100.9", "10.0.0.0/8", "198.51.100.9"),
        # A client that sends its own header cannot choose its address: nginx appends.
        ("10.0.0.2", "1.2.3.4, 198.51.100.9", "10.0.0.0/8", "198.51.100.9"),
        # Two proxies in a row, both trusted.
        ("10.0.0.2", "198.51.100.9, 10.0.0.7", "10.0.0.0/8", "198.51.100.9"),
        ("10.0.0.2", " , garbage, 198.51.100.9 ", "10.0.0.2", "198.51.100.9"),
        ("10.0.0.2", "", "10.0.0.2", "10.0.0.2"),
        ("::1", "2001:db8::5", "::1", "2001:db8::5"),
    ],
)
def test_client_address(peer: str, forwarded: str | None, trusted: str, expected: str) -> None:
    assert client_ip(request_from(peer, forwarded, trusted)) == expected


def test_a_bad_trusted_proxy_is_named() -> None:
    with pytest.raises(ValueError, match=r"'10\.0\.0\.300'"):
        parse_networks("10.0.0.1, 10.0.0.300")


def limited(gateway_settings: GatewaySettings, **limits: int) -> GatewaySettings:
    return gateway_settings.model_copy(update={"trusted_proxies": "127.0.0.1", **limits})


def test_new_guests_are_limited_per_address(gateway_settings: GatewaySettings) -> None:
    settings = limited(gateway_settings, rate_limit_guest_create_per_ip_per_hour=3)
    one, other = new_address(), new_address()
    with serve(create_app(settings)) as url, httpx.Client(base_url=url) as client:
        made = [client.post("/api/auth/guest", headers={"X-Forwarded-For": one}) for _ in range(4)]
        assert [r.status_code for r in made] == [201, 201, 201, 429]
        refused = made[-1].json()["error"]
        assert refused["code"] == "rate_limited" and "sign in" in refused["message"]
        assert int(made[-1].headers["Retry-After"]) > 60  # 3 an hour: the next in 20 min
        # Another address has its own allowance.
        assert client.post("/api/auth/guest", headers={"X-Forwarded-For": other}).is_success


def test_guest_chat_is_limited_per_address_across_guests(
    gateway_settings: GatewaySettings,
) -> None:
    settings = limited(gateway_settings, rate_limit_guest_chat_per_ip_per_minute=3)
    address = {"X-Forwarded-For": new_address()}
    with serve(create_app(settings)) as url:
        guests = []
        for _ in range(2):
            client = httpx.Client(base_url=url, headers=address, timeout=30)
            guest = Patient(client, client.post("/api/auth/guest").json()["csrf_token"])
            guests.append((guest, guest.post("/api/sessions", json={}).json()["id"]))
        asked = [
            guest.post(f"/api/sessions/{sid}/messages", json={"content": "头痛", "stream": False})
            for guest, sid in (guests * 2)
        ]
        # Two guests, one address: the fourth turn of the two together is refused.
        assert [r.status_code for r in asked] == [200, 200, 200, 429]
        # A signed-up patient from the same address is limited per user, not per address.
        client = httpx.Client(base_url=url, headers=address, timeout=30)
        signup = client.post(
            "/api/auth/signup", json={"email": f"p{id(client)}@example.org", "password": "x" * 12}
        )
        patient = Patient(client, signup.json()["csrf_token"])
        sid = patient.post("/api/sessions", json={}).json()["id"]
        r = patient.post(f"/api/sessions/{sid}/messages", json={"content": "头痛", "stream": False})
        assert r.status_code == 200
