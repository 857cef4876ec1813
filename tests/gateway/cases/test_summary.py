"""The clinician's summary of a case: written by the model through the same flow as answers
(what it was asked shows in the engine's prompt), stored, labelled as AI-written."""

from __future__ import annotations

from collections.abc import Callable

from services.gateway.cases.summary import ASK
from tests.support.engine_emulator import EmulatorHandle
from tests.support.platform import Patient

from .test_escalation import ask, new_session


def test_a_model_written_summary_for_the_clinician(
    new_guest: Callable[[], Patient],
    new_clinician: Callable[..., Patient],
    engine: EmulatorHandle,
) -> None:
    p, dr = new_guest(), new_clinician()
    sid = new_session(p)
    case_id = ask(p, sid, "转人工，我咳嗽两周了").json()["handoff"]["case_id"]
    assert dr.get(f"/api/cases/{case_id}").json()["summary"] is None
    engine.control(reply_tokens=["患者", "咳嗽", "两周。"])
    r = dr.post(f"/api/cases/{case_id}/summary")
    assert r.status_code == 200, r.text
    summary = r.json()
    assert summary["text"] == "患者咳嗽两周。" and summary["ai_generated"] is True
    assert summary["model"]
    sent = [r for r in engine.state()["requests"] if r["path"] == "/generate_stream"][-1]
    prompt = sent["body"]["inputs"]
    assert "我咳嗽两周了" in prompt and ASK in prompt
    assert dr.get(f"/api/cases/{case_id}").json()["summary"]["text"] == "患者咳嗽两周。"
    # Never shown to the patient.
    assert "患者咳嗽两周" not in p.get(f"/api/sessions/{sid}").text
