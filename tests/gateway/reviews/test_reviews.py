"""Review and correction end to end through the real gateway: a patient asks for a person, the
clinician who claimed the case marks the model's answer corrected, the patient's session says
so, the figures per model count it, and the consented correction becomes a redacted dataset
that a real fine-tune job (the worker, a tiny model, CPU) trains on."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tests.support.platform import Patient
from tests.support.worker import TERMINAL, Worker, create, wait_for

MEDCHAT = str(Path(sys.executable).with_name("medchat"))
PHONE = "13912345678"
CORRECTED = f"胃疼三天应去消化内科就诊，必要时做胃镜。预约请打{PHONE}。"


def consent(p: Patient) -> None:
    r = p.client.put(
        "/api/auth/me/consent", json={"consent": True}, headers={"X-CSRF-Token": p.csrf}
    )
    assert r.status_code == 204, r.text


def new_session(p: Patient) -> str:
    return str(p.post("/api/sessions", json={}).json()["id"])


def ask(p: Patient, sid: str, question: str) -> int:
    """The model's answer (the engine emulator's) to `question`: its message id."""
    r = p.post(f"/api/sessions/{sid}/messages", json={"content": question, "stream": False})
    assert r.status_code == 200, r.text
    return int(r.json()["message"]["id"])


def hand_off(p: Patient, sid: str) -> str:
    r = p.post(f"/api/sessions/{sid}/handoff", json={})
    assert r.status_code == 201, r.text
    return str(r.json()["case_id"])


def claim(dr: Patient, case_id: str, *, pause: bool = True) -> None:
    r = dr.post(f"/api/cases/{case_id}/claim", json={"pause_model": pause})
    assert r.status_code == 200, r.text


def review(who: Patient | httpx.Client, case_id: str, **body: Any) -> httpx.Response:
    return who.post(f"/api/cases/{case_id}/reviews", json=body)


def test_a_clinician_corrects_an_answer_the_patient_sees_it_and_the_figures_count_it(
    new_guest: Callable[[], Patient], new_clinician: Callable[..., Patient], admin: httpx.Client
) -> None:
    started = datetime.now(UTC).isoformat()
    p = new_guest()
    dr, other = new_clinician("张医生", "主任医师"), new_clinician("钱医生")
    sid, elsewhere = new_session(p), new_session(p)
    answer = ask(p, sid, "胃疼三天了怎么办")
    foreign = ask(p, elsewhere, "头晕怎么办")
    case_id = hand_off(p, sid)

    # Only the clinician holding the case: before the claim it is nobody's (409); once
    # claimed, another clinician does not see it at all (404), and patients are not clinicians.
    before = review(other, case_id, message_id=answer, verdict="correct")
    assert before.status_code == 409 and before.json()["error"]["code"] == "case_not_claimed"
    claim(dr, case_id)
    assert review(other, case_id, message_id=answer, verdict="correct").status_code == 404
    assert review(p, case_id, message_id=answer, verdict="correct").status_code == 403

    # Only the model's answers of this case's session; a correction needs its text.
    asked = p.get(f"/api/sessions/{sid}").json()["messages"][0]
    assert asked["role"] == "user"
    question = review(dr, case_id, message_id=asked["id"], verdict="correct")
    assert question.status_code == 400 and question.json()["error"]["code"] == "not_an_answer"
    assert review(dr, case_id, message_id=foreign, verdict="correct").status_code == 404
    assert review(dr, case_id, message_id=answer, verdict="corrected").status_code == 422
    for bad in (
        {"verdict": "corrected", "corrected": "   "},
        {"verdict": "corrected", "corrected": "x" * 20_001},
        {"verdict": "corrected", "corrected": "改", "reason": "no_such_reason"},
        {"verdict": "correct", "corrected": "改"},
        {"verdict": "correct", "reason": "unsafe"},
    ):
        assert review(dr, case_id, message_id=answer, **bad).status_code == 422, bad

    # Reviewing again replaces the verdict.
    first = review(dr, case_id, message_id=answer, verdict="correct")
    assert first.status_code == 201, first.text
    assert first.json()["verdict"] == "correct" and first.json()["corrected"] is None
    r = review(
        dr,
        case_id,
        message_id=answer,
        verdict="corrected",
        corrected=CORRECTED,
        reason="missed_red_flag",
    )
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["message_id"] == answer and out["case_id"] == case_id
    assert (out["verdict"], out["corrected"], out["reason"]) == (
        "corrected",
        CORRECTED,
        "missed_red_flag",
    )
    assert out["reviewer"] == {"name": "张医生", "title": "主任医师"}
    model = out["model"]
    assert model

    # The patient's session shows the review on the answer (still labelled as the model's).
    messages = p.get(f"/api/sessions/{sid}").json()["messages"]
    reviewed = next(m for m in messages if m["id"] == answer)
    assert reviewed["ai_generated"] is True
    assert reviewed["review"] == {
        "verdict": "corrected",
        "reviewer": {"name": "张医生", "title": "主任医师"},
        "corrected": CORRECTED,
    }

    # The figures per model: one answer reviewed (the replaced verdict does not count
    # twice), corrected, and why. Admins only.
    stats = admin.get("/api/admin/reviews/stats", params={"since": started})
    assert stats.status_code == 200, stats.text
    [row] = [s for s in stats.json()["data"] if s["model"] == model]
    assert (row["reviewed"], row["corrected"], row["corrected_share"]) == (1, 1, 1.0)
    assert row["top_reasons"] == [{"reason": "missed_red_flag", "count": 1}]
    assert dr.get("/api/admin/reviews/stats").status_code == 403
    assert p.get("/api/admin/reviews/stats").status_code == 403

    # Audited: who reviewed which answer, never the text.
    trail = admin.get("/api/admin/audit", params={"action": "case.review", "limit": 500})
    mine = [e for e in trail.json()["data"] if e["target_id"] == str(answer)]
    assert len(mine) == 2 and {e["actor_role"] for e in mine} == {"clinician"}
    assert CORRECTED not in json.dumps(mine, ensure_ascii=False)

    # An admin may review without holding the case.
    assert review(admin, case_id, message_id=answer, verdict="correct").status_code == 201


def test_consented_corrections_become_a_redacted_dataset_that_fine_tunes(
    new_guest: Callable[[], Patient],
    new_clinician: Callable[..., Patient],
    admin: httpx.Client,
    sp_dir: Path,
    tmp_path: Path,
    base_model: str,
    worker: Worker,
) -> None:
    consenting, silent = new_guest(), new_guest()
    consent(consenting)
    dr = new_clinician("张医生", "主任医师")

    # The consenting patient: an answer the clinician marks correct, the clinician's reply
    # in the hand-off (the model not paused), a second answer the clinician corrects.
    sid = new_session(consenting)
    first = ask(consenting, sid, "胃疼三天")
    case_id = hand_off(consenting, sid)
    claim(dr, case_id, pause=False)
    reply = dr.post(f"/api/cases/{case_id}/messages", json={"content": "我看了您的记录。"})
    assert reply.status_code == 201, reply.text
    answer = ask(consenting, sid, "需要做胃镜吗")
    for body in (
        {"message_id": first, "verdict": "correct"},
        {"message_id": answer, "verdict": "corrected", "corrected": CORRECTED},
    ):
        r = review(dr, case_id, **body)
        assert r.status_code == 201, r.text
    model_answer = consenting.get(f"/api/sessions/{sid}").json()["messages"][1]["content"]

    # The patient who did not consent: corrected too, but never in a dataset.
    other = new_session(silent)
    withheld = ask(silent, other, "咳嗽一周")
    other_case = hand_off(silent, other)
    claim(dr, other_case)
    r = review(
        dr,
        other_case,
        message_id=withheld,
        verdict="corrected",
        corrected="未同意者的更正",
        reason="incomplete",
    )
    assert r.status_code == 201, r.text

    assert dr.post("/api/admin/datasets/from-reviews", json={}).status_code == 403
    made = admin.post("/api/admin/datasets/from-reviews", json={})
    assert made.status_code == 201, made.text
    f = made.json()
    assert f["purpose"] == "fine-tune" and f["filename"].startswith("reviews-")
    content = admin.get(f"/v1/files/{f['id']}/content").content.decode()
    rows = [json.loads(line) for line in content.strip().splitlines()]
    assert f["rows"] == len(rows)
    assert "未同意者" not in content and "咳嗽一周" not in content
    [mine] = [
        row["messages"] for row in rows if "需要做胃镜吗" in json.dumps(row, ensure_ascii=False)
    ]
    # The answer marked correct trains in a row of its own; after it, it and the
    # clinician's reply are one context turn (weight 0: the reply speaks as the doctor, the
    # model must not learn it); the corrected answer is the clinician's text, redacted.
    assert [
        {"role": "user", "content": "胃疼三天"},
        {"role": "assistant", "content": model_answer},
    ] in ([row["messages"] for row in rows])
    assert [t["role"] for t in mine] == ["user", "assistant", "user", "assistant"]
    assert mine[1] == {
        "role": "assistant",
        "content": f"{model_answer}\n\n我看了您的记录。",
        "weight": 0,
    }
    assert "weight" not in mine[3]
    assert mine[3]["content"] == CORRECTED.replace(PHONE, "[PHONE]")
    assert PHONE not in content

    # The platform's own validation of fine-tune files passes...
    path = tmp_path / "reviews.jsonl"
    path.write_text(content, encoding="utf-8")
    check = subprocess.run(
        [MEDCHAT, "validate", str(path), "--tokenizer", str(sp_dir)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    # ...and a fine-tune job trains on the file and succeeds (tiny model, CPU).
    job = create(admin, base_model, f["id"], n_epochs=2, batch_size=1)
    done = wait_for(admin, job["id"], lambda j: j["status"] in TERMINAL, timeout=600, worker=worker)
    assert done["status"] == "succeeded", (done, worker.tail())
    assert done["trained_tokens"]
