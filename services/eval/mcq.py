"""Multiple-choice accuracy (MLEC-QA / NEEP-306 style exams), zero- or few-shot, per subject.

Rows (JSONL): `question`, the options as `options` ({"A": …} or a list) or as top-level
`A`…`E` fields (C-Eval style), `answer` ("B", or "ACD" for several), optional `subject` and
`id`. The model answers through the gateway; its letter(s) are read by `extract_answer`."""

from __future__ import annotations

import asyncio
import json
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .client import ChatClient
from .prompts import MCQ_INSTRUCTION, mcq_question

LETTERS = "ABCDEFGH"


@dataclass(frozen=True)
class Question:
    id: str
    subject: str
    question: str
    options: tuple[tuple[str, str], ...]  # (letter, text)
    answer: str  # sorted letters

    @property
    def letters(self) -> str:
        return "".join(letter for letter, _ in self.options)


class McqFormatError(ValueError):
    pass


def _options(row: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    raw = row.get("options")
    if isinstance(raw, dict):
        pairs = [(str(k).strip().upper(), str(v)) for k, v in raw.items()]
    elif isinstance(raw, list):
        pairs = [(LETTERS[i], str(v)) for i, v in enumerate(raw[: len(LETTERS)])]
    else:
        pairs = [(k, str(row[k])) for k in LETTERS if k in row]
    # Option texts that already start with their letter ("A. 发热") are kept clean.
    cleaned = [(k, re.sub(rf"^\s*{k}\s*[.、．:：)]\s*", "", v)) for k, v in pairs]
    if len(cleaned) < 2 or any(len(k) != 1 or k not in LETTERS for k, _ in cleaned):
        raise McqFormatError("needs two or more options lettered A–H")
    return tuple(cleaned)


def read_questions(path: Path) -> list[Question]:
    questions = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                options = _options(row)
                answer = "".join(sorted(set(str(row["answer"]).strip().upper())))
                if not answer or any(a not in {k for k, _ in options} for a in answer):
                    raise McqFormatError(f"answer {row['answer']!r} is not one of the options")
                questions.append(
                    Question(
                        id=str(row.get("id", number)),
                        subject=str(row.get("subject") or row.get("category") or "all"),
                        question=str(row["question"]),
                        options=options,
                        answer=answer,
                    )
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise McqFormatError(f"{path.name}:{number}: {exc}") from None
    return questions


# "答案是B", "正确答案：B、D", "answer: (C)", "选B", "B项"… The letters may be separated by
# commas, 、 or "和"; full-width letters are folded by NFKC first.
_LEAD = r"(?:正确)?答案(?:应该|应|可能)?(?:是|为|选)?|选择|应选|选项?|answer(?:\s+is)?|option"
_SET = r"([A-H](?:\s*(?:,|，|、|和|and|与|\s)\s*[A-H])*)"
_EXPLICIT = re.compile(rf"(?:{_LEAD})\s*[:：]?\s*[(（\[【]?\s*{_SET}(?![A-Za-z])", re.IGNORECASE)
# A leading letter, unless it is one of several hedged ("A 或 B").
_LEADING = re.compile(
    rf"^\s*[(（\[【]?{_SET}(?!\s*(?:或|or|/)\s*[A-H])\s*(?:[)）\]】.、．:：]|项|$|\s)",
    re.IGNORECASE,
)
_STANDALONE = re.compile(r"(?<![A-Za-z0-9])([A-H])(?![A-Za-z0-9])")


def _letters(found: str, allowed: str) -> str | None:
    letters = "".join(sorted({c for c in found.upper() if c in allowed}))
    return letters or None


def extract_answer(reply: str, options: Sequence[tuple[str, str]]) -> str | None:
    """The chosen letter(s), sorted, or None when the reply commits to nothing readable.
    In order: an explicit "答案是X"; a reply that starts with the letter; the one option whose
    text it quotes; a single letter standing alone."""
    allowed = "".join(k for k, _ in options)
    text = unicodedata.normalize("NFKC", reply).replace("*", "").strip()
    upper = text.upper()
    explicit = [m.group(1) for m in _EXPLICIT.finditer(upper)]
    if explicit:
        return _letters(explicit[-1], allowed)  # the conclusion, after any working
    if (m := _LEADING.match(upper)) is not None:
        return _letters(m.group(1), allowed)
    quoted = [k for k, v in options if len(v.strip()) >= 2 and v.strip() in text]
    if len(quoted) == 1:
        return quoted[0]
    alone = {m.group(1) for m in _STANDALONE.finditer(upper) if m.group(1) in allowed}
    if len(alone) == 1:
        return alone.pop()
    return None


def build_messages(question: Question, shots: Sequence[Question]) -> list[dict[str, str]]:
    """The instruction, then each example as a chat round answered with its letters, then
    the question."""
    messages: list[dict[str, str]] = []
    for i, shot in enumerate(shots):
        prefix = MCQ_INSTRUCTION + "\n\n" if i == 0 else ""
        messages.append(
            {"role": "user", "content": prefix + mcq_question(shot.question, shot.options)}
        )
        messages.append({"role": "assistant", "content": shot.answer})
    prefix = "" if shots else MCQ_INSTRUCTION + "\n\n"
    messages.append(
        {"role": "user", "content": prefix + mcq_question(question.question, question.options)}
    )
    return messages


def pick_shots(question: Question, pool: Sequence[Question], k: int) -> list[Question]:
    """The first `k` questions of the pool from the same subject (any subject when it has too
    few), never the question itself."""
    same = [q for q in pool if q.subject == question.subject and q.id != question.id]
    other = [q for q in pool if q.subject != question.subject and q.id != question.id]
    return (same + other)[:k]


@dataclass
class Answered:
    question: Question
    reply: str | None
    extracted: str | None
    error: str | None = None

    @property
    def correct(self) -> bool:
        return self.extracted == self.question.answer

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.question.id,
            "subject": self.question.subject,
            "answer": self.question.answer,
            "extracted": self.extracted,
            "correct": self.correct,
            "reply": self.reply,
            "error": self.error,
        }


async def answer_all(
    questions: Sequence[Question],
    *,
    doctor: ChatClient,
    shots: int,
    pool: Sequence[Question],
    concurrency: int,
    max_tokens: int = 64,
    on_done: Callable[[Answered], None] | None = None,
) -> list[Answered]:
    """Every question, greedily decoded (temperature 0), `concurrency` at a time."""
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(q: Question) -> Answered:
        async with gate:
            try:
                reply = await doctor.complete(
                    build_messages(q, pick_shots(q, pool, shots)),
                    temperature=0.0,
                    max_tokens=max_tokens,
                )
            except Exception as exc:  # a failed request is a wrong answer, and said so
                result = Answered(q, None, None, f"{type(exc).__name__}: {exc}")
            else:
                result = Answered(q, reply, extract_answer(reply, q.options))
        if on_done:
            on_done(result)
        return result

    return list(await asyncio.gather(*(one(q) for q in questions)))


@dataclass(frozen=True)
class SubjectScore:
    subject: str
    n: int
    correct: int
    unreadable: int  # replies the extractor could not read (counted wrong)

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0


def score(results: Sequence[Answered]) -> list[SubjectScore]:
    """Per subject (sorted), then "all" over every question."""
    by: dict[str, list[Answered]] = defaultdict(list)
    for r in results:
        by[r.question.subject].append(r)

    def tally(name: str, rs: list[Answered]) -> SubjectScore:
        return SubjectScore(
            name,
            len(rs),
            sum(r.correct for r in rs),
            sum(r.extracted is None for r in rs),
        )

    rows = [tally(s, by[s]) for s in sorted(by)]
    if len(rows) != 1 or rows[0].subject != "all":
        rows.append(tally("all", list(results)))
    return rows
