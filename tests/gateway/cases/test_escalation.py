"""Each way a session reaches a clinician, end to end through the real gateway: the emergency
rules (self-harm is urgent and tells the patient at once), the patient asking ("转人工" and the
button), an unhelpful rating, an admin; then claim, the model's pause, a reply delivered live
to the patient's open stream, and the patient ending the hand-off."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support.platform import Patient


def ask(p: Patient, sid: str, text: str) -> httpx.Response:
    return p.post(f"/api/sessions/{sid}/messages", json={"content": text, "stream": False})


def new_session(p: Patient) -> str:
    return str(p.post("/api/sessions", json={}).json()["id"])


def case_of(clinician: Patient, sid: str) -> dict[str, Any]:
    r = clinician.get("/api/cases", params={"state": "all", "limit": 200})
    assert r.status_code == 200, r.text
    found = [c for c in r.json()["data"] if c["session_id"] == sid]
    assert len(found) == 1, found
    case: dict[str, Any] = found[0]
    return case


def sse_events(lines: Iterator[str]) -> Iterator[tuple[str, Any]]:
    event = None
    for line in lines:
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: ") and event is not None:
            yield event, json.loads(line.removeprefix("data: "))
            event = None


def test_self_harm_opens_an_urgent_case_and_tells_the_patient_at_once(
    new_guest: Callable[[], Patient], new_clinician: Callable[..., Patient]
) -> None:
    p, dr = new_guest(), new_clinician()
    sid = new_session(p)
    with p.stream_answer(sid, "我不想活了，想结束自己的生命") as r:
        assert r.status_code == 200
        events = list(sse_events(r.iter_lines()))
    meta = events[0][1]
    assert events[0][0] == "meta" and "suicide" in meta["emergency"]["categories"]
    handoff = meta["handoff"]
    assert handoff["state"] == "open" and handoff["urgent"] is True
    assert "12356" in handoff["message_zh"] and "120" in handoff["message_en"]
    assert events[-1][0] == "done" and events[-1][1]["handoff"]["case_id"] == handoff["case_id"]
    case = case_of(dr, sid)
    assert case["reason"] == "emergency" and case["category"] == "suicide" and case["urgent"]
    # The SLA clock of an urgent case: minutes, not a day.
    opened, due = (datetime.fromisoformat(case[k]) for k in ("opened_at", "due_at"))
    assert timedelta(0) < due - opened <= timedelta(minutes=15)


def test_asking_for_a_person_opens_a_case_and_the_model_still_answers(
    new_guest: Callable[[], Patient], new_clinician: Callable[..., Patient]
) -> None:
    p, dr = new_guest(), new_clinician()
    sid = new_session(p)
    r = ask(p, sid, "我想转人工，找医生聊聊")
    assert r.status_code == 200, r.text
    assert r.json()["handoff"]["state"] == "open" and r.json()["handoff"]["urgent"] is False
    assert r.json()["message"]["ai_generated"] is True
    case = case_of(dr, sid)
    assert case["reason"] == "patient_request" and not case["urgent"]
    # A second trigger on the same session does not open a second case.
    again = ask(p, sid, "转人工")
    assert again.json()["handoff"]["case_id"] == case["id"]


def test_the_button_an_unhelpful_rating_and_an_admin_each_open_a_case(
    new_guest: Callable[[], Patient], new_clinician: Callable[..., Patient], admin: httpx.Client
) -> None:
    p, dr = new_guest(), new_clinician()
    button, rated, escalated = new_session(p), new_session(p), new_session(p)
    r = p.post(f"/api/sessions/{button}/handoff", json={})
    assert r.status_code == 201 and r.json()["state"] == "open", r.text
    assert p.get(f"/api/sessions/{button}/handoff").json()["case_id"] == r.json()["case_id"]
    answer = ask(p, rated, "头有点晕").json()["message"]["id"]
    assert p.get(f"/api/sessions/{rated}/handoff").json() is None
    rate = p.post(f"/api/sessions/{rated}/messages/{answer}/feedback", json={"helpful": False})
    assert rate.status_code == 204
    made = admin.post("/api/cases", json={"session_id": escalated, "urgent": True})
    assert made.status_code == 201, made.text
    reasons = {case_of(dr, s)["reason"] for s in (button, rated, escalated)}
    assert reasons == {"patient_request", "unhelpful", "admin"}
    assert case_of(dr, escalated)["urgent"] is True
    # Urgent first in the queue.
    queue = dr.get("/api/cases", params={"limit": 200}).json()["data"]
    urgent = [c["urgent"] for c in queue]
    assert urgent == sorted(urgent, reverse=True)


def test_hand_off_claim_pause_live_reply_and_the_patient_ends_it(
    new_guest: Callable[[], Patient],
    new_clinician: Callable[..., Patient],
    gateway_url: str,
) -> None:
    p, dr, other = new_guest(), new_clinician("王医生", "副主任医师"), new_clinician()
    sid = new_session(p)
    first = ask(p, sid, "转人工，我胃疼了三天")
    case_id = first.json()["handoff"]["case_id"]

    # The patient's open chat listens for the clinician.
    lines: list[str] = []
    ready = threading.Event()

    def listen() -> None:
        with p.client.stream("GET", f"/api/sessions/{sid}/events", timeout=30) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                ready.set()
                lines.append(line)
                if len(lines) > 1 and lines[-2] == "event: message":
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert ready.wait(10)

    claim = dr.post(f"/api/cases/{case_id}/claim", json={"pause_model": True})
    assert claim.status_code == 200, claim.text
    assert claim.json()["state"] == "claimed" and claim.json()["model_paused"] is True
    # Another clinician no longer sees it, and cannot take it.
    assert other.get(f"/api/cases/{case_id}").status_code == 404
    assert other.post(f"/api/cases/{case_id}/claim", json={}).status_code == 404
    # The model is paused: the question is stored for the clinician, no answer generated.
    held = ask(p, sid, "医生，还需要做胃镜吗？")
    assert held.status_code == 202, held.text
    assert held.json()["handoff"]["model_paused"] is True
    assert held.json()["handoff"]["clinician"]["name"] == "王医生"
    assert p.post(f"/api/sessions/{sid}/regenerate", json={"stream": False}).status_code == 409

    reply = dr.post(f"/api/cases/{case_id}/messages", json={"content": "建议先做胃镜检查。"})
    assert reply.status_code == 201, reply.text
    assert reply.json()["role"] == "clinician" and reply.json()["ai_generated"] is False
    assert reply.json()["author"] == {"name": "王医生", "title": "副主任医师"}
    listener.join(10)
    assert "event: message" in lines, lines
    data = json.loads(lines[lines.index("event: message") + 1].removeprefix("data: "))
    assert data["content"] == "建议先做胃镜检查。" and data["author"]["name"] == "王医生"

    # The patient's session shows the clinician's reply as the clinician's.
    messages = p.get(f"/api/sessions/{sid}").json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "clinician"]
    assert messages[1]["ai_generated"] and not messages[3]["ai_generated"]
    assert dr.get(f"/api/cases/{case_id}").json()["state"] == "answered"

    # The patient ends the hand-off: the case closes, the model answers again.
    ended = p.delete(f"/api/sessions/{sid}/handoff")
    assert ended.status_code == 200 and ended.json()["state"] == "closed"
    assert ask(p, sid, "谢谢，那我先吃点什么？").status_code == 200
    assert dr.get(f"/api/cases/{case_id}").json()["state"] == "closed"
    assert dr.post(f"/api/cases/{case_id}/messages", json={"content": "x"}).status_code == 409


def test_a_case_that_cannot_be_opened_never_costs_the_patient_the_answer(
    new_guest: Callable[[], Patient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gateway runs in this process: the case's database write is made to fail."""
    from services.gateway.cases import service

    async def broken(**_: Any) -> Any:
        raise RuntimeError("database gone")

    monkeypatch.setattr(service, "escalate", broken)
    p = new_guest()
    sid = new_session(p)
    r = ask(p, sid, "我不想活了")
    assert r.status_code == 200, r.text
    assert r.json()["emergency"] is not None and r.json()["handoff"] is None
    assert r.json()["message"]["status"] == "complete"
    # The session's lease was released with the answer: the next turn is not "busy".
    assert ask(p, sid, "谢谢").status_code == 200
