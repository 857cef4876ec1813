"""Multiple-choice accuracy: the answer extractor, the question formats, and `medchat eval
mcq` against the tiny model served for real through the gateway."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from services.cli.main import cli
from services.eval.mcq import (
    Answered,
    McqFormatError,
    Question,
    build_messages,
    extract_answer,
    pick_shots,
    read_questions,
    score,
)

OPTIONS = (("A", "发热"), ("B", "咳嗽"), ("C", "头痛"), ("D", "维生素B12缺乏"), ("E", "腹泻"))

READ = {
    "B": "B",
    "B. 咳嗽": "B",
    "(C) 头痛": "C",
    "答案：C": "C",
    "正确答案是 D。": "D",
    "我认为答案应该是(A)": "A",
    "选E": "E",
    "答案：A、C": "AC",
    "The answer is B.": "B",
    "Ｃ": "C",  # full-width
    "**D**": "D",
    "【C】头痛": "C",
    "A和B都有可能，但最终答案是B": "B",  # the conclusion, not the working
    "根据题意，维生素B12缺乏最可能。": "D",  # the one option it quotes
    "这题我选 E 项": "E",
}
UNREAD = ["我不知道", "维生素B12", "", "A 或 B 或 C", "F"]


@pytest.mark.parametrize(("reply", "letters"), READ.items(), ids=READ.keys())
def test_extractor_reads_the_choice(reply: str, letters: str) -> None:
    assert extract_answer(reply, OPTIONS) == letters


@pytest.mark.parametrize("reply", UNREAD)
def test_extractor_does_not_guess(reply: str) -> None:
    assert extract_answer(reply, OPTIONS) is None


def test_question_formats(tmp_path: Path) -> None:
    f = tmp_path / "q.jsonl"
    rows = [
        {
            "id": "q1",
            "subject": "Clinic",
            "question": "题一",
            "options": {"A": "甲", "B": "乙"},
            "answer": "b",
        },
        {"question": "题二", "options": ["A. 甲", "乙", "丙"], "answer": "CA", "subject": "TCM"},
        {"question": "题三", "A": "甲", "B": "乙", "C": "丙", "D": "丁", "answer": "D"},
    ]
    f.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    qs = read_questions(f)
    assert [(q.id, q.subject, q.answer, q.letters) for q in qs] == [
        ("q1", "Clinic", "B", "AB"),
        ("2", "TCM", "AC", "ABC"),
        ("3", "all", "D", "ABCD"),
    ]
    assert qs[1].options[0] == ("A", "甲")  # "A. " prefix dropped
    f.write_text(json.dumps({"question": "x", "options": ["a", "b"], "answer": "C"}) + "\n")
    with pytest.raises(McqFormatError, match=r"q.jsonl:1: answer 'C'"):
        read_questions(f)


def test_few_shot_rounds_and_scoring() -> None:
    def q(i: int, subject: str, answer: str = "A") -> Question:
        return Question(str(i), subject, f"问题{i}", OPTIONS[:4], answer)

    pool = [q(1, "TCM"), q(2, "Clinic", "B"), q(3, "Clinic", "C"), q(4, "Clinic")]
    shots = pick_shots(pool[3], pool, 2)
    assert [s.id for s in shots] == ["2", "3"]  # same subject first, never itself
    messages = build_messages(pool[3], shots)
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    assert messages[0]["content"].startswith("以下是中国医学考试的选择题")
    assert [m["content"] for m in messages[1::2]] == ["B", "C"]
    assert messages[-1]["content"].endswith("D. 维生素B12缺乏\n答案：")
    zero = build_messages(pool[3], [])
    assert len(zero) == 1 and zero[0]["content"].startswith("以下是")

    results = [
        Answered(pool[0], "A", "A"),
        Answered(pool[1], "C", "C"),
        Answered(pool[2], "?", None),
        Answered(pool[3], "A", "A"),
    ]
    rows = {s.subject: (s.n, s.correct, s.unreadable) for s in score(results)}
    assert rows == {"Clinic": (3, 1, 1), "TCM": (1, 1, 0), "all": (4, 2, 1)}


def test_mcq_command_through_the_gateway(gateway: str, api_key: str, tmp_path: Path) -> None:
    """The tiny model answers noise; what is checked is the path: every question reached the
    model through the gateway, was read, and counted per subject."""
    f = tmp_path / "exam.jsonl"
    rows = [
        {
            "id": f"q{i}",
            "subject": "Clinic" if i % 2 else "TCM",
            "question": f"第{i}题：发热首选？",
            "options": {"A": "休息", "B": "输液", "C": "手术", "D": "观察"},
            "answer": "A",
        }
        for i in range(6)
    ]
    f.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "answers.jsonl"
    result = CliRunner().invoke(
        cli,
        [
            "eval",
            "mcq",
            str(f),
            "--model",
            "tiny",
            "--shots",
            "2",
            "--out",
            str(out),
            "--json",
            "--gateway",
            gateway,
            "--api-key",
            api_key,
            "--max-tokens",
            "4",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["shots"] == 2
    by = {s["subject"]: s for s in summary["subjects"]}
    assert (by["Clinic"]["n"], by["TCM"]["n"], by["all"]["n"]) == (3, 3, 6)
    answered = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(answered) == 6
    assert all(a["error"] is None and isinstance(a["reply"], str) for a in answered)
    assert sum(a["correct"] for a in answered) == by["all"]["correct"]
