"""Legal holds: admins place and release them (audited, no read of the conversation needed);
a held session is kept from the patient's delete and from account erasure, each refusal a
409 legal_hold that does not show the admin's reason, and audited with it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx

from tests.support.platform import Patient, make_key

REASON = "litigation hold: complaint 2026-0417 (legal dept.)"


def audit(admin: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    r = admin.get("/api/admin/audit", params={"limit": 500, **params})
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = r.json()["data"]
    return rows


def session_of(p: Patient, text: str) -> str:
    sid = str(p.post("/api/sessions", json={}).json()["id"])
    r = p.post(f"/api/sessions/{sid}/messages", json={"content": text, "stream": False})
    assert r.status_code == 200, r.text
    return sid


def hold_path(sid: str) -> str:
    return f"/api/admin/sessions/{sid}/legal-hold"


def test_admins_hold_and_release_audited_without_reading(
    new_guest: Callable[[], Patient], admin: httpx.Client
) -> None:
    p = new_guest()
    sid = session_of(p, "右下腹痛")
    patient_id = p.get("/api/auth/me").json()["id"]

    held = admin.put(hold_path(sid), json={"reason": REASON})
    assert held.status_code == 200, held.text
    body = held.json()
    assert body["held"] is True and body["reason"] == REASON and body["held_at"]
    assert body["patient_id"] == patient_id and "右下腹痛" not in held.text
    # Holding again replaces the reason and keeps when the hold began.
    again = admin.put(hold_path(sid), json={"reason": "a narrower reason"}).json()
    assert again["reason"] == "a narrower reason" and again["held_at"] == body["held_at"]

    released = admin.delete(hold_path(sid))
    assert released.status_code == 200 and released.json()["held"] is False
    assert admin.delete(hold_path(sid)).json()["held"] is False  # nothing held: no change

    events = audit(admin, subject=patient_id)
    holds = [e for e in events if e["action"] == "privacy.legal_hold"]
    assert [e["details"]["reason"] for e in holds] == ["a narrower reason", REASON]
    assert all(e["target_type"] == "session" and e["target_id"] == sid for e in holds)
    releases = [e["details"] for e in events if e["action"] == "privacy.legal_hold_released"]
    assert releases == [
        {"was_held": False, "reason": None},
        {"was_held": True, "reason": "a narrower reason"},
    ]
    # No read of the conversation was needed, so none was made.
    assert not [e for e in events if e["action"].startswith("content.")]
    assert "右下腹痛" not in str(events)


def test_hold_requests_are_checked(new_guest: Callable[[], Patient], admin: httpx.Client) -> None:
    sid = session_of(new_guest(), "牙痛")
    for reason in ("", "x" * 501):
        r = admin.put(hold_path(sid), json={"reason": reason})
        assert r.status_code == 422, r.text
    assert admin.put(hold_path(sid), json={}).status_code == 422
    assert admin.put(hold_path(sid), json={"reason": "x" * 500}).status_code == 200
    missing = str(uuid.uuid4())
    assert admin.put(hold_path(missing), json={"reason": REASON}).status_code == 404
    assert admin.delete(hold_path(missing)).status_code == 404


def test_only_admins_hold(
    gateway_url: str, database_url: str, new_guest: Callable[[], Patient]
) -> None:
    owner = new_guest()
    sid = session_of(owner, "鼻塞")
    integrator = httpx.Client(
        base_url=gateway_url,
        headers={"Authorization": f"Bearer {make_key(database_url, 'integrator')}"},
    )
    anonymous = httpx.Client(base_url=gateway_url)
    # Patients, even on their own session, and integrators: 403; nobody: 401.
    assert (
        owner.client.put(
            hold_path(sid), json={"reason": REASON}, headers={"X-CSRF-Token": owner.csrf}
        ).status_code
        == 403
    )
    assert owner.delete(hold_path(sid)).status_code == 403
    assert integrator.put(hold_path(sid), json={"reason": REASON}).status_code == 403
    assert integrator.delete(hold_path(sid)).status_code == 403
    assert anonymous.put(hold_path(sid), json={"reason": REASON}).status_code == 401
    assert owner.delete(f"/api/sessions/{sid}").status_code == 204  # never held
    integrator.close()
    anonymous.close()


def test_a_held_session_cannot_be_deleted_by_its_patient(
    new_guest: Callable[[], Patient], admin: httpx.Client
) -> None:
    p = new_guest()
    sid = session_of(p, "咽喉痛")
    patient_id = p.get("/api/auth/me").json()["id"]
    assert admin.put(hold_path(sid), json={"reason": REASON}).status_code == 200

    refused = p.delete(f"/api/sessions/{sid}")
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "legal_hold" and "legal hold" in error["message"]
    assert "2026-0417" not in refused.text  # the admin's reason stays with the admins
    assert p.get(f"/api/sessions/{sid}").json()["messages"][0]["content"] == "咽喉痛"
    (event,) = audit(admin, subject=patient_id, action="privacy.session_delete_refused")
    assert event["target_id"] == sid and event["actor_id"] == patient_id
    assert event["details"] == {"legal_hold": REASON}

    assert admin.delete(hold_path(sid)).status_code == 200
    assert p.delete(f"/api/sessions/{sid}").status_code == 204
    assert p.get(f"/api/sessions/{sid}").status_code == 404


def test_account_erasure_is_refused_while_a_session_is_held(
    new_guest: Callable[[], Patient], admin: httpx.Client
) -> None:
    """The safer choice: nothing is erased (not even the unheld sessions) while a hold lasts;
    the patient can still export, and erasure works once the hold is released."""
    p = new_guest()
    held, other = session_of(p, "皮疹"), session_of(p, "咳嗽")
    patient_id = p.get("/api/auth/me").json()["id"]
    assert admin.put(hold_path(held), json={"reason": REASON}).status_code == 200

    refused = p.delete("/api/auth/me")
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "legal_hold" and "2026-0417" not in refused.text
    assert p.get("/api/auth/me").status_code == 200
    assert {s["id"] for s in p.get("/api/sessions").json()["data"]} == {held, other}
    assert p.get("/api/auth/me/export").status_code == 200
    (event,) = audit(admin, subject=patient_id, action="privacy.account_delete_refused")
    assert event["details"] == {"legal_hold": [held]}
    assert not audit(admin, subject=patient_id, action="privacy.account_deleted")

    assert admin.delete(hold_path(held)).status_code == 200
    assert p.delete("/api/auth/me").status_code == 204
    assert p.get("/api/auth/me").status_code == 401
    (deleted,) = audit(admin, subject=patient_id, action="privacy.account_deleted")
    assert deleted["details"] == {"sessions": 2}
