"""Clinicians for the case tests: created by an admin through the API, signed in like
patients (cookie + CSRF)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.support.platform import Patient

PASSWORD = "clinician-pass-1"


@pytest.fixture
def new_clinician(gateway_url: str, admin: httpx.Client) -> Iterator[Callable[..., Patient]]:
    clients: list[httpx.Client] = []

    def make(name: str = "李医生", title: str | None = "主治医师") -> Patient:
        email = f"dr-{uuid.uuid4().hex[:10]}@hospital.test"
        r = admin.post(
            "/api/admin/clinicians",
            json={"email": email, "password": PASSWORD, "display_name": name, "title": title},
        )
        assert r.status_code == 201, r.text
        assert r.json()["role"] == "clinician"
        client = httpx.Client(base_url=gateway_url, timeout=30)
        clients.append(client)
        login = client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200, login.text
        return Patient(client, login.json()["csrf_token"])

    yield make
    for c in clients:
        c.close()
