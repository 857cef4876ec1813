"""The judge's side: the published rubric rebuilt exactly, and score parsing tolerant of format
drift, on every line of DISC-MedLLM's shipped score files and on malformed replies."""

from __future__ import annotations

import json
import re

import pytest

from services.eval.datasets import SETS, load_cases
from services.eval.judge import JudgeParseError, format_scores, parse_scores
from services.eval.prompts import CRITERIA, judge_prompt
from tests.eval.conftest import EVAL_DATA

SCORE_FILES = sorted((EVAL_DATA / "gpt4_scores").glob("result_*.jsonl"))
LINE = re.compile(r"^(Proactivity|Accuracy|Helpfulness|Linguistic Quality): (\d)$")


def shipped_rows() -> list[dict[str, object]]:
    return [json.loads(line) for f in SCORE_FILES for line in f.open(encoding="utf-8")]


def test_the_shipped_files_are_there() -> None:
    assert [f.name for f in SCORE_FILES] == [
        "result_DISC-MedLLM_cmb-clin.jsonl",
        "result_DISC-MedLLM_cmd.jsonl",
        "result_DISC-MedLLM_cmid.jsonl",
    ]
    assert len(shipped_rows()) == 73 + 120 + 120


def test_every_shipped_score_line_parses_to_its_numbers() -> None:
    for row in shipped_rows():
        expected = {}
        for line in str(row["scores"]).splitlines():
            m = LINE.match(line)
            assert m, line
            expected[m.group(1)] = float(m.group(2))
        assert parse_scores(str(row["scores"])) == expected
        assert format_scores(expected) == row["scores"]  # and back, byte for byte


def test_the_rubric_and_dialogue_rebuild_every_shipped_judge_prompt() -> None:
    """Our prompt for DISC-MedLLM's published dialogues is the prompt GPT-4 was given."""
    for key, s in SETS.items():
        dialogues = json.loads(
            (EVAL_DATA / "dialogues" / f"DISC-MedLLM_{key}.json").read_text(encoding="utf-8")
        )
        by_id = {d["id"]: d for d in dialogues}
        rows = [r for r in shipped_rows() if r["source"] == s.source]
        assert rows
        for r in rows:
            assert judge_prompt(s.source, by_id[r["id"]]["conversation"]) == r["prompt"]


def test_cases_load_for_every_set() -> None:
    counts = {key: len(load_cases(EVAL_DATA, key)) for key in SETS}
    assert counts == {"cmb-clin": 73, "cmd": 120, "cmid": 120}
    clin = load_cases(EVAL_DATA, "cmb-clin", limit=2)
    assert len(clin) == 2 and clin[0].case and clin[0].first_question.startswith("我是病人的家属")
    cmd = load_cases(EVAL_DATA, "cmd", limit=1)[0]
    assert cmd.department == "儿科" and cmd.dataset_info == {"department": "儿科"}


DRIFTED = {
    "markdown": "**Proactivity**: 4\n**Accuracy**: 5\n**Helpfulness**: 4\n"
    "**Linguistic Quality**: 5",
    "fenced, full-width": "```\nProactivity：４\nAccuracy： 5\nHelpfulness:4/5\n"
    "Linguistic Quality: 5 out of 5\n```",
    "json": '{"Proactivity": 3, "Accuracy": 4, "Helpfulness": 4, "Linguistic_Quality": 5}',
    "chinese": "主动性：4分\n准确性：5分\n有用性：4分\n语言质量：5分",
    "scale mentioned": "Proactivity (1-5): 4\nAccuracy (1-5): 3\nHelpfulness (1-5): 2\n"
    "Linguistic Quality (1-5): 5",
    "table, half point": "| Criterion | Score |\n|---|---|\n| Proactivity | 4 |\n| Accuracy | 4 |"
    "\n| Helpfulness | 4 |\n| Linguistic Quality | 4.5 |",
    "template echoed first": "Proactivity: x\nAccuracy: x\nHelpfulness: x\nLinguistic Quality: x"
    "\n\nProactivity: 2\nAccuracy: 3\nHelpfulness: 3\nLinguistic Quality: 4",
    "prose around": "Here are my scores.\n- proactivity - 3\n- accuracy - 4\n- helpfulness - 4\n"
    "- linguistic quality - 5\nThe doctor asked few questions.",
}


@pytest.mark.parametrize("reply", DRIFTED.values(), ids=DRIFTED.keys())
def test_format_drift_is_read(reply: str) -> None:
    scores = parse_scores(reply)
    assert list(scores) == list(CRITERIA)
    assert all(1 <= v <= 5 for v in scores.values())


def test_drifted_values() -> None:
    assert parse_scores(DRIFTED["fenced, full-width"]) == dict.fromkeys(CRITERIA, 5.0) | {
        "Proactivity": 4.0,
        "Helpfulness": 4.0,
    }
    assert parse_scores(DRIFTED["scale mentioned"])["Proactivity"] == 4.0
    assert parse_scores(DRIFTED["table, half point"])["Linguistic Quality"] == 4.5
    assert format_scores(parse_scores(DRIFTED["table, half point"])).endswith("Quality: 4.5")


MALFORMED = {
    "refusal": ("I cannot evaluate this conversation.", "no Proactivity score"),
    "out of range": (
        "Proactivity: 7\nAccuracy: 5\nHelpfulness: 5\nLinguistic Quality: 5",
        "Proactivity 7 is outside 1–5",
    ),
    "zero": (
        "Proactivity: 0\nAccuracy: 5\nHelpfulness: 5\nLinguistic Quality: 5",
        "outside 1–5",
    ),
    "other scale": (
        "Proactivity: 8/10\nAccuracy: 5\nHelpfulness: 5\nLinguistic Quality: 5",
        "scored out of 10",
    ),
    "one missing": ("Proactivity: 4\nAccuracy: 5\nHelpfulness: 5", "no Linguistic Quality"),
    "template only": ("Proactivity: x\nAccuracy: x\nHelpfulness: x\nLinguistic Quality: x", "no"),
    "empty": ("", "no Proactivity score"),
}


@pytest.mark.parametrize(("reply", "why"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_replies_are_refused_with_the_reason(reply: str, why: str) -> None:
    with pytest.raises(JudgeParseError, match=re.escape(why)):
        parse_scores(reply)
