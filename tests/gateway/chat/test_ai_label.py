"""Every model answer in the patient chat is labelled AI-generated (the x-medchat-ai-generated
header, `ai_generated` on the answer and on each stored assistant message), and an answer that
names a prescription medicine with a dose carries the prescription notice (JSON and stream)."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.support.engine_emulator import EmulatorHandle
from tests.support.platform import Patient

PRESCRIBING = ["可以口服", "阿莫西林", "0.5g，", "每日三次。"]


def test_the_patient_chat_labels_answers_and_adds_the_prescription_notice(
    new_guest: Callable[[], Patient], engine: EmulatorHandle
) -> None:
    p = new_guest()
    sid = p.post("/api/sessions", json={}).json()["id"]
    calm = p.post(f"/api/sessions/{sid}/messages", json={"content": "头痛", "stream": False})
    assert calm.status_code == 200, calm.text
    assert calm.headers["x-medchat-ai-generated"] == "true"
    body = calm.json()
    assert body["ai_generated"] is True and body["message"]["ai_generated"] is True
    assert body["prescription"] is None  # the default reply names no medicine

    engine.control(reply_tokens=PRESCRIBING)
    r = p.post(f"/api/sessions/{sid}/messages", json={"content": "咳嗽有痰", "stream": False})
    assert r.status_code == 200, r.text
    notice = r.json()["prescription"]
    assert notice["classes"] == ["antibiotic"]
    assert "医生" in notice["message_zh"] and "doctor" in notice["message_en"]
    assert "阿莫西林" not in json.dumps(notice, ensure_ascii=False)  # rule ids, not the answer

    with p.stream_answer(sid, "还要注意什么") as s:
        assert s.headers["x-medchat-ai-generated"] == "true"
        lines = [line for line in s.iter_lines() if line.startswith("data: ")]
    done = json.loads(lines[-1].removeprefix("data: "))
    assert done["ai_generated"] is True
    assert done["prescription"]["matched"] == ["antibiotic.amount", "antibiotic.schedule_zh"]

    # Stored answers read back labelled; the patient's own words are not.
    messages = p.get(f"/api/sessions/{sid}").json()["messages"]
    assert [m["ai_generated"] for m in messages] == [False, True] * 3
