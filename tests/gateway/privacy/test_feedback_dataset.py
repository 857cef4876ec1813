"""Patients rate answers; admins turn consented, helpful conversations into a redacted dataset
that validates and that the fine-tune API accepts."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.support.platform import Patient

MEDCHAT = str(Path(sys.executable).with_name("medchat"))


def answered(p: Patient, question: str, sid: str | None = None) -> tuple[str, int]:
    sid = sid or p.post("/api/sessions", json={}).json()["id"]
    r = p.post(f"/api/sessions/{sid}/messages", json={"content": question, "stream": False})
    assert r.status_code == 200, r.text
    return str(sid), int(r.json()["message"]["id"])


def test_rated_consented_conversations_become_a_redacted_dataset(
    new_guest: Callable[[], Patient], admin: httpx.Client, tmp_path: Path, sp_dir: Path
) -> None:
    consenting, silent = new_guest(), new_guest()
    assert (
        consenting.client.put(
            "/api/auth/me/consent",
            json={"consent": True},
            headers={"X-CSRF-Token": consenting.csrf},
        ).status_code
        == 204
    )
    sid, answer = answered(consenting, "我叫王小明，电话13812345678，最近头痛")
    bad_sid, bad_answer = answered(consenting, "咳嗽怎么办")
    # One conversation rated helpful, unhelpful, helpful: kept only up to the first answer.
    mixed, first = answered(consenting, "发烧38度")
    _, second = answered(consenting, "要吃退烧药吗", mixed)
    _, third = answered(consenting, "需要去医院吗", mixed)
    other_sid, other_answer = answered(silent, "胃痛怎么办")
    rate = "/api/sessions/{}/messages/{}/feedback"
    assert consenting.post(rate.format(sid, answer), json={"helpful": True}).status_code == 204
    assert (
        consenting.post(rate.format(bad_sid, bad_answer), json={"helpful": False}).status_code
        == 204
    )
    assert (
        silent.post(rate.format(other_sid, other_answer), json={"helpful": True}).status_code == 204
    )
    for answer_id, helpful in ((first, True), (second, False), (third, True)):
        r = consenting.post(rate.format(mixed, answer_id), json={"helpful": helpful})
        assert r.status_code == 204
    # Only answers, only one's own.
    assert consenting.post(rate.format(sid, answer - 1), json={"helpful": True}).status_code == 400
    assert silent.post(rate.format(sid, answer), json={"helpful": True}).status_code == 404

    made = admin.post("/api/admin/datasets/from-feedback", json={})
    assert made.status_code == 201, made.text
    f = made.json()
    content = admin.get(f"/v1/files/{f['id']}/content").content.decode()
    # The helpful conversation of the consenting patient only (not the unhelpful one, not the
    # silent patient's), redacted.
    rows = content.strip().splitlines()
    assert f["rows"] == len(rows)
    mine = [r for r in rows if "头痛" in r]
    assert len(mine) == 1 and "咳嗽" not in content and "胃痛" not in content
    [fever] = [json.loads(r)["conversation"] for r in rows if "发烧" in r]
    assert [t["content"] for t in fever if t["role"] == "user"] == ["发烧38度"]
    assert len(fever) == 2 and "退烧药" not in content and "去医院" not in content
    assert "王小明" not in content and "13812345678" not in content and "[PHONE]" in mine[0]

    path = tmp_path / "feedback.jsonl"
    path.write_text(content, encoding="utf-8")
    check = subprocess.run(
        [MEDCHAT, "validate", str(path), "--tokenizer", str(sp_dir)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
