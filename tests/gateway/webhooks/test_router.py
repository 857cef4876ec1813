"""The admin API of webhooks through the real gateway: the secret shown once, only http(s)
URLs, disabling, the deliveries of a webhook, and the audit trail of it all."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.platform import Patient
from tests.support.webhooks import deliveries

URL = "https://his.hospital.example/medchat/events"


def test_the_secret_is_shown_once_and_never_listed(
    admin: httpx.Client, new_webhook: Callable[[str], dict[str, Any]]
) -> None:
    made = new_webhook(URL)
    assert made["url"] == URL and made["disabled_at"] is None
    assert len(made["secret"]) >= 40  # 32 random bytes, URL-safe base64
    listed = admin.get("/api/admin/webhooks")
    assert listed.status_code == 200, listed.text
    mine = [w for w in listed.json() if w["id"] == made["id"]]
    assert len(mine) == 1 and "secret" not in mine[0]
    assert made["secret"] not in listed.text
    # Audited, with the URL and never the secret.
    audit = admin.get("/api/admin/audit", params={"action": "admin.webhook_create"}).json()
    entry = next(e for e in audit["data"] if e["target_id"] == made["id"])
    assert entry["details"] == {"url": URL} and entry["target_type"] == "webhook"
    assert made["secret"] not in str(audit)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://his.hospital.example/x",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "https://",
        "his.hospital.example/x",
        "https://user:pw@his.hospital.example/x",  # credentials would show in every listing
        "https://his.hospital.example/" + "x" * 2000,
    ],
)
def test_only_http_urls_without_credentials_are_taken(admin: httpx.Client, url: str) -> None:
    r = admin.post("/api/admin/webhooks", json={"url": url})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["param"] == "url"


def test_only_active_webhooks_get_a_delivery_and_disabling_is_audited(
    admin: httpx.Client,
    new_webhook: Callable[[str], dict[str, Any]],
    new_guest: Callable[[], Patient],
) -> None:
    active, disabled = new_webhook(URL), new_webhook(URL + "/old")
    r = admin.delete(f"/api/admin/webhooks/{disabled['id']}")
    assert r.status_code == 204, r.text
    assert admin.delete(f"/api/admin/webhooks/{disabled['id']}").status_code == 404
    listed = {w["id"]: w for w in admin.get("/api/admin/webhooks").json()}
    assert listed[disabled["id"]]["disabled_at"] is not None
    assert listed[active["id"]]["disabled_at"] is None
    audit = admin.get("/api/admin/audit", params={"action": "admin.webhook_disable"}).json()
    assert any(e["target_id"] == disabled["id"] for e in audit["data"])

    # A case opens (no worker runs here: the delivery waits, pending).
    p = new_guest()
    sid = p.post("/api/sessions", json={}).json()["id"]
    case = admin.post("/api/cases", json={"session_id": sid})
    assert case.status_code == 201, case.text
    [delivery] = deliveries(admin, active["id"])
    assert delivery["event"] == "case.opened"
    assert delivery["status"] == "pending" and delivery["attempts"] == 0
    assert delivery["last_status_code"] is None and delivery["delivered_at"] is None
    assert "payload" not in delivery
    assert deliveries(admin, disabled["id"]) == []


def test_unknown_webhooks_are_404(admin: httpx.Client) -> None:
    missing = uuid.uuid4()
    assert admin.delete(f"/api/admin/webhooks/{missing}").status_code == 404
    assert admin.get(f"/api/admin/webhooks/{missing}/deliveries").status_code == 404
