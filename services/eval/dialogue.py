"""One case of DISC-MedLLM's dialogue evaluation: the simulated patient opens with the case's
first question, the model under test answers through the gateway, for `turns` rounds; then
the judge scores the finished dialogue."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .client import ChatClient
from .datasets import Case
from .judge import JudgeParseError, Scores, format_scores, parse_scores
from .prompts import judge_prompt, patient_background, patient_messages

Conversation = list[dict[str, str]]  # {"role": "patient" | "doctor", "content": ...}

# A simulator that prefixes its line with its role, or wraps it in quotes.
_PATIENT_PREFIX = re.compile(r"^\s*(?:患者|病人|patient)\s*[:：]\s*", re.IGNORECASE)


def clean_patient_line(text: str) -> str:
    text = _PATIENT_PREFIX.sub("", text.strip())
    if len(text) > 1 and text[0] + text[-1] in ('""', "“”", "「」"):
        text = text[1:-1].strip()
    return text


def doctor_messages(conversation: Conversation) -> list[dict[str, str]]:
    """The dialogue as the model under test sees it: patient turns are the user's."""
    roles = {"patient": "user", "doctor": "assistant"}
    return [{"role": roles[m["role"]], "content": m["content"]} for m in conversation]


async def simulate(
    case: Case,
    *,
    doctor: ChatClient,
    patient: ChatClient,
    turns: int,
    doctor_max_tokens: int | None = None,
) -> Conversation:
    """`turns` rounds of patient question and doctor answer, starting from the case's first
    question (DISC-MedLLM's published dialogues have 3)."""
    background = patient_background(
        case=case.case, question=case.first_question, department=case.department
    )
    conversation: Conversation = [{"role": "patient", "content": case.first_question}]
    for turn in range(turns):
        if turn > 0:
            line = clean_patient_line(
                await patient.complete(patient_messages(background, conversation))
            )
            if not line:
                break  # the patient has nothing more to say: a shorter dialogue, still scored
            conversation.append({"role": "patient", "content": line})
        answer = await doctor.complete(doctor_messages(conversation), max_tokens=doctor_max_tokens)
        conversation.append({"role": "doctor", "content": answer.strip()})
    return conversation


@dataclass(frozen=True)
class Judgement:
    prompt: str
    reply: str
    scores: Scores
    attempts: int


class JudgeFailed(RuntimeError):
    def __init__(self, message: str, replies: list[str]):
        super().__init__(message)
        self.replies = replies


async def judge(
    source: str, conversation: Conversation, *, judge: ChatClient, retries: int
) -> Judgement:
    """Score a dialogue with the published rubric; an unreadable reply is asked again
    (`retries` more times) before the case is given up."""
    prompt = judge_prompt(source, conversation)
    replies: list[str] = []
    for attempt in range(1, retries + 2):
        reply = await judge.complete([{"role": "user", "content": prompt}], temperature=0.0)
        replies.append(reply)
        try:
            return Judgement(prompt, reply, parse_scores(reply), attempt)
        except JudgeParseError as exc:
            problem = str(exc)
    raise JudgeFailed(
        f"the judge's reply could not be read after {len(replies)} tries: {problem}", replies
    )


def published_row(
    *,
    case_id: str,
    model: str,
    source: str,
    conversation: list[dict[str, Any]],
    scores: str,
    prompt: str | None = None,
    dataset_info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One JSONL line in DISC-MedLLM's published shape: the dialogue file's fields and the
    score file's `scores` (and `prompt`) together."""
    row: dict[str, Any] = {"id": case_id, "model": model, "source": source}
    if dataset_info:
        row["dataset_info"] = dataset_info
    row["conversation"] = conversation
    row["scores"] = scores
    if prompt is not None:
        row["prompt"] = prompt
    return row


def result_row(
    *,
    case_id: str,
    model: str,
    source: str,
    conversation: list[dict[str, Any]],
    scores: Scores,
    dataset_info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A scored case as a published-format line: scores in their string form, and the judge
    prompt they answer."""
    return published_row(
        case_id=case_id,
        model=model,
        source=source,
        conversation=conversation,
        scores=format_scores(scores),
        prompt=judge_prompt(source, conversation),
        dataset_info=dataset_info,
    )
