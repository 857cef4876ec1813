"""What a clinician may see: only what was escalated, never the patient base; another
clinician's claimed case is invisible; patients see clinicians' replies in their own sessions
only; every clinician read and action is audited (who, what, when), never the content."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.support.platform import Patient

from .test_escalation import ask, new_session

SECRET = "我的胃疼和工作压力有关"


def audit(admin: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    r = admin.get("/api/admin/audit", params={"limit": 500, **params})
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = r.json()["data"]
    return rows


def test_clinicians_see_only_escalated_cases_and_are_audited(
    new_guest: Callable[[], Patient],
    new_clinician: Callable[..., Patient],
    admin: httpx.Client,
) -> None:
    p, stranger = new_guest(), new_guest()
    dr, other = new_clinician("赵医生"), new_clinician("钱医生")
    private, escalated = new_session(p), new_session(p)
    ask(p, private, SECRET)
    case_id = ask(p, escalated, f"转人工。{SECRET}").json()["handoff"]["case_id"]
    dr_id = dr.get("/api/auth/me").json()["id"]

    # Not the patient base: sessions stay their owner's, admin routes stay admins'.
    for path in (f"/api/sessions/{private}", f"/api/sessions/{escalated}"):
        assert dr.get(path).status_code == 404
    assert dr.get("/api/admin/users").status_code == 403
    assert dr.get("/api/admin/audit").status_code == 403
    assert dr.post("/api/cases", json={"session_id": private}).status_code == 403
    listed = {c["session_id"] for c in dr.get("/api/cases", params={"state": "all"}).json()["data"]}
    assert escalated in listed and private not in listed
    # Patients and integrators are not clinicians.
    assert p.get("/api/cases").status_code == 403
    assert p.get(f"/api/cases/{case_id}").status_code == 403

    # The open case is readable by any clinician (to choose it); once claimed, only by its
    # clinician (and admins).
    assert other.get(f"/api/cases/{case_id}").status_code == 200
    assert dr.post(f"/api/cases/{case_id}/claim", json={}).status_code == 200
    assert other.get(f"/api/cases/{case_id}").status_code == 404
    assert other.post(f"/api/cases/{case_id}/messages", json={"content": "x"}).status_code == 404
    assert case_id not in {c["id"] for c in other.get("/api/cases").json()["data"]}
    assert admin.get(f"/api/cases/{case_id}").status_code == 200
    detail = dr.get(f"/api/cases/{case_id}").json()
    assert detail["claimed_by_me"] and detail["claimed_by"]["name"] == "赵医生"
    assert [m["role"] for m in detail["messages"]] == ["user", "assistant"]
    assert (
        dr.post(f"/api/cases/{case_id}/messages", json={"content": "请按时吃饭。"}).status_code
        == 201
    )

    # The reply is in the patient's session, and nowhere else.
    assert [m["role"] for m in p.get(f"/api/sessions/{escalated}").json()["messages"]][
        -1
    ] == "clinician"
    assert stranger.get(f"/api/sessions/{escalated}").status_code == 404
    assert stranger.get(f"/api/sessions/{escalated}/events").status_code == 404
    assert stranger.get(f"/api/sessions/{escalated}/handoff").status_code == 404

    # Every read and action audited with who and what, never the words.
    rows = [r for r in audit(admin, actor=dr_id) if r["action"].startswith("case.")]
    actions = {r["action"] for r in rows}
    assert {"case.read", "case.claim", "case.reply"} <= actions, actions
    for r in rows:
        assert r["actor_role"] == "clinician" and r["at"]
        assert SECRET not in str(r) and "请按时吃饭" not in str(r)
    reads = [r for r in rows if r["action"] == "case.read"]
    assert all(r["target_id"] == case_id for r in reads)
