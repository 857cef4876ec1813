"""`medchat eval dialogues` end to end: the tiny model served for real behind the gateway,
stand-in patient and judge services (with malformed and failing replies), results in Postgres
and JSONL; a run killed mid-way resumes without redoing its finished cases."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
from click.testing import CliRunner, Result

from services.cli.main import cli
from services.eval.datasets import load_cases
from services.eval.prompts import judge_prompt
from tests.eval.conftest import EVAL_DATA, GOOD_SCORES, question_of
from tests.support.stand_in_llm import Reply, StandIn

ROOT = Path(__file__).resolve().parents[2]


def sql(database_url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(database_url.replace("+asyncpg", ""))
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    return asyncio.run(go())


def common_args(gateway: str, api_key: str, database_url: str, out: Path) -> list[str]:
    return [
        *("--gateway", gateway, "--api-key", api_key),
        *("--database-url", database_url, "--out", str(out), "--eval-data", str(EVAL_DATA)),
    ]


def run_cli(args: list[str]) -> Result:
    return CliRunner().invoke(cli, ["eval", "dialogues", *args])


def test_a_run_end_to_end(
    gateway: str, api_key: str, database_url: str, patient: StandIn, judge: StandIn, tmp_path: Path
) -> None:
    def drifting_judge(body: dict[str, Any], n: int) -> Reply:
        if n == 1:
            return "The doctor was helpful overall."  # no scores: asked again
        if n == 2:
            return (503, {"error": "overloaded"})  # retried by the client
        return "**Proactivity**: 4\n**Accuracy**: 3\n**Helpfulness**: 4\n**Linguistic Quality**: 5"

    judge.script = drifting_judge
    out = tmp_path / "results.jsonl"
    (before,) = sql(database_url, "SELECT coalesce(sum(requests), 0) AS n FROM api_keys")
    result = run_cli(
        [
            *("--model", "tiny-disc", "--patient", patient.spec, "--judge", judge.spec),
            *("--set", "cmb-clin", "--limit", "3", "--concurrency", "2"),
            *common_args(gateway, api_key, database_url, out),
        ]
    )
    assert result.exit_code == 0, result.output
    run_id = result.stderr.split("run ", 1)[1].split(":", 1)[0]

    cases = load_cases(EVAL_DATA, "cmb-clin", limit=3)
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["id"] for r in rows) == [c.id for c in cases]
    for row in rows:
        assert list(row) == ["id", "model", "source", "conversation", "scores", "prompt"]
        assert (row["model"], row["source"]) == ("tiny-disc", "CMB-clin")
        conversation = row["conversation"]
        assert [m["role"] for m in conversation] == ["patient", "doctor"] * 3
        case = next(c for c in cases if c.id == row["id"])
        assert conversation[0]["content"] == case.first_question
        # The simulator's "患者：" prefix is dropped.
        assert conversation[2]["content"].startswith("医生，我还想问第")
        assert row["scores"] == GOOD_SCORES
        assert row["prompt"] == judge_prompt("CMB-clin", conversation)
    # The patient saw each doctor reply, and the case it plays (CMB-clin: the full record).
    assert len(patient.requests) == 3 * 2
    assert all(r["messages"][0]["role"] == "system" for r in patient.requests)
    assert any(cases[0].case and cases[0].case[:30] in t for t in patient.texts())
    for row in rows:
        assert any(row["conversation"][1]["content"] in t for t in patient.texts())
    # The doctor's 9 answers came through the gateway with the API key (usage counted).
    (after,) = sql(database_url, "SELECT coalesce(sum(requests), 0) AS n FROM api_keys")
    assert after["n"] - before["n"] == 9
    # The judge: one unreadable reply asked again, one 503 retried, three cases scored.
    assert len(judge.requests) == 5

    (run,) = sql(database_url, "SELECT * FROM eval_runs WHERE id = $1", run_id)
    assert (run["status"], run["total"], run["model"], run["dataset"]) == (
        "succeeded",
        3,
        "tiny-disc",
        "cmb-clin",
    )
    summary = json.loads(run["summary"])
    assert (summary["n"], summary["Accuracy"], summary["overall"]) == (3, 3.0, 4.0)
    stored = sql(database_url, "SELECT * FROM eval_cases WHERE run_id = $1", run_id)
    assert {(c["status"], c["attempts"]) for c in stored} == {("scored", 1)}
    assert all(c["judge_reply"].startswith("**Proactivity**") for c in stored)

    report = CliRunner().invoke(
        cli, ["eval", "report", run_id, "--json", "--no-chart", "--database-url", database_url]
    )
    assert report.exit_code == 0, report.output
    (group,) = json.loads(report.stdout)
    assert (group["source"], group["model"], group["n"], group["overall"]) == (
        "CMB-clin",
        "tiny-disc",
        3,
        4.0,
    )


def test_failed_cases_fail_the_run_and_a_resume_retries_only_them(
    gateway: str, api_key: str, database_url: str, patient: StandIn, judge: StandIn, tmp_path: Path
) -> None:
    cases = load_cases(EVAL_DATA, "cmid", limit=3)
    broken = cases[1].first_question

    def judge_script(body: dict[str, Any], n: int) -> Reply:
        if question_of(body) == broken:
            return "Proactivity: 9\nAccuracy: 9\nHelpfulness: 9\nLinguistic Quality: 9"
        return GOOD_SCORES

    judge.script = judge_script
    out = tmp_path / "cmid.jsonl"
    args = common_args(gateway, api_key, database_url, out)
    first = run_cli(
        [
            *("--model", "tiny-disc", "--patient", patient.spec, "--judge", judge.spec),
            *("--set", "cmid", "--limit", "3", "--turns", "2"),
            *args,
        ]
    )
    assert first.exit_code == 1, first.output
    assert "1 of 3 cases failed" in first.stderr
    run_id = first.stderr.split("run ", 1)[1].split(":", 1)[0]
    (failed,) = sql(
        database_url, "SELECT * FROM eval_cases WHERE run_id = $1 AND status = 'failed'", run_id
    )
    assert failed["case_id"] == cases[1].id and "outside 1–5" in failed["error"]
    assert failed["judge_reply"].startswith("Proactivity: 9")
    assert len(out.read_text().splitlines()) == 2  # only scored cases are written

    judge.script = lambda body, n: GOOD_SCORES
    judge.requests.clear()
    second = run_cli(["--resume", run_id, *args])
    assert second.exit_code == 0, second.output
    assert [question_of(r) for r in judge.requests] == [broken]
    stored = {
        c["case_id"]: (c["status"], c["attempts"])
        for c in sql(database_url, "SELECT * FROM eval_cases WHERE run_id = $1", run_id)
    }
    assert stored == {
        cases[0].id: ("scored", 1),
        cases[1].id: ("scored", 2),
        cases[2].id: ("scored", 1),
    }
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["id"] for r in rows) == sorted(c.id for c in cases)
    assert all(r["source"] == "CMID" and r["dataset_info"] for r in rows)
    assert all(len(r["conversation"]) == 4 for r in rows)  # --turns 2, kept on resume


def test_a_killed_run_resumes_without_redoing_finished_cases(
    gateway: str, api_key: str, database_url: str, patient: StandIn, judge: StandIn, tmp_path: Path
) -> None:
    cases = load_cases(EVAL_DATA, "cmd", limit=4)
    out = tmp_path / "cmd.jsonl"
    args = common_args(gateway, api_key, database_url, out)
    judge.hold_from = 3  # the third case's judging never answers: the process dies there
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "services.cli", "eval", "dialogues", "--model", "tiny-disc"),
            *("--patient", patient.spec, "--judge", judge.spec, "--set", "cmd", "--limit", "4"),
            *("--concurrency", "1", "--turns", "2", *args),
        ],
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while len(judge.requests) < 3:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the run never reached its third case"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)  # a crash: no cleanup, no final status
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        judge.hold_from = None
    (run,) = sql(database_url, "SELECT * FROM eval_runs ORDER BY created_at DESC LIMIT 1")
    run_id = run["id"]
    assert run["status"] == "running"  # as the crash left it
    done_before = {
        c["case_id"]
        for c in sql(database_url, "SELECT case_id FROM eval_cases WHERE run_id = $1", run_id)
    }
    assert done_before == {cases[0].id, cases[1].id}
    # The crash may also tear the JSONL's last line; the resume drops it.
    with out.open("a", encoding="utf-8") as f:
        f.write('{"id": "' + cases[2].id + '", "model": "tiny-d')

    finished = {cases[0].first_question, cases[1].first_question}
    patient_seen, judge_seen = len(patient.requests), len(judge.requests)
    resumed = run_cli(["--resume", run_id, *args])
    assert resumed.exit_code == 0, resumed.output

    judged_again = [question_of(r) for r in judge.requests[judge_seen:]]
    assert judged_again == [cases[2].first_question, cases[3].first_question]
    asked_again = patient.texts()[patient_seen:]
    assert len(asked_again) == 2 and not any(q in t for q in finished for t in asked_again)
    stored = sql(database_url, "SELECT * FROM eval_cases WHERE run_id = $1", run_id)
    assert {c["case_id"]: c["attempts"] for c in stored} == {c.id: 1 for c in cases}
    (run,) = sql(database_url, "SELECT * FROM eval_runs WHERE id = $1", run_id)
    assert run["status"] == "succeeded" and run["total"] == 4
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == [c.id for c in cases]
    assert rows[0]["dataset_info"] == {"department": cases[0].department}
