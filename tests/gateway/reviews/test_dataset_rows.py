"""How a session becomes a training row (no database): which answers train, what is context,
how turns of one side merge, and that every row passes the fine-tune file validation."""

from __future__ import annotations

import io
import json
from typing import Any

from services.core.chatformat.validate import validate_stream
from services.gateway.feedback.service import TrainingTurn, dataset_rows
from services.gateway.reviews.service import _turns
from services.store.tables.cases import MessageReview
from services.store.tables.sessions import Message


def msg(mid: int, role: str, content: str, status: str = "complete") -> Message:
    return Message(id=mid, seq=mid, role=role, content=content, status=status)


def valid(*lines: str) -> None:
    report = validate_stream(io.BytesIO("".join(f"{x}\n" for x in lines).encode()), name="rows")
    assert report.errors == 0, [p.to_dict() for p in report.problems]


def rows(lines: list[str]) -> list[list[dict[str, Any]]]:
    """The rows' turns (`messages` or `conversation`), once the fine-tune file validation
    has passed them."""
    valid(*lines)
    return [next(iter(json.loads(line).values())) for line in lines]


SESSION = [
    msg(1, "user", "胃疼"),
    msg(2, "assistant", "多喝水。"),  # marked correct
    msg(3, "user", "还是疼"),
    msg(4, "user", "疼得厉害"),  # the model was paused: two questions in a row
    msg(5, "clinician", "我是医生，请来门诊。"),
    msg(6, "user", "要吃药吗"),
    msg(7, "assistant", "", status="failed"),
    msg(8, "assistant", "吃布洛芬。"),  # corrected
    msg(9, "user", "好的"),
    msg(10, "assistant", "不客气。"),  # after the last reviewed answer: not in the row
]
REVIEWS = {
    2: MessageReview(message_id=2, verdict="correct"),
    8: MessageReview(
        message_id=8,
        verdict="corrected",
        corrected="请遵医嘱，电话13812345678。",
        reason="prescribes",
    ),
}


def test_a_reviewed_session_trains_only_what_a_clinician_vouched_for() -> None:
    [turns] = rows(dataset_rows(_turns(SESSION, REVIEWS, True), redact=True, key="messages"))
    assert turns == [
        {"role": "user", "content": "胃疼"},
        {"role": "assistant", "content": "多喝水。"},
        {"role": "user", "content": "还是疼\n\n疼得厉害"},
        {"role": "assistant", "content": "我是医生，请来门诊。", "weight": 0},
        {"role": "user", "content": "要吃药吗"},
        {"role": "assistant", "content": "请遵医嘱，电话[PHONE]。"},
    ]
    # Without the answers marked correct, that one is context too.
    [without] = rows(dataset_rows(_turns(SESSION, REVIEWS, False), redact=False, key="messages"))
    assert without[1] == {"role": "assistant", "content": "多喝水。", "weight": 0}
    assert without[-1]["content"] == "请遵医嘱，电话13812345678。"


def test_an_answer_the_clinician_replied_to_trains_alone_and_is_context_later() -> None:
    """The hand-off's usual shape: the model answered, the clinician replied, the clinician
    corrected the answer. The reply must not train, the correction must."""
    session = [
        msg(1, "user", "头痛"),
        msg(2, "assistant", "休息。"),
        msg(3, "clinician", "我来看看。"),
        msg(4, "user", "还要做什么"),
        msg(5, "assistant", "量血压。"),
    ]
    corrected = {
        2: MessageReview(message_id=2, verdict="corrected", corrected="先量体温。"),
        5: MessageReview(message_id=5, verdict="correct"),
    }
    first, second = rows(dataset_rows(_turns(session, corrected, True), redact=True))
    assert first == [
        {"role": "user", "content": "头痛"},
        {"role": "assistant", "content": "先量体温。"},
    ]
    assert second == [
        {"role": "user", "content": "头痛"},
        {"role": "assistant", "content": "先量体温。\n\n我来看看。", "weight": 0},
        {"role": "user", "content": "还要做什么"},
        {"role": "assistant", "content": "量血压。"},
    ]
    # Only the first answer reviewed: the row ends with it, the reply cut off.
    [alone] = rows(dataset_rows(_turns(session, {2: corrected[2]}, True), redact=True))
    assert alone == first


def test_rows_start_with_a_question_and_nothing_untrained_makes_a_row() -> None:
    greeting = TrainingTurn("clinician", "您好", trained=False)
    question, answer = TrainingTurn("user", "头痛"), TrainingTurn("assistant", "休息。")
    assert rows(dataset_rows([greeting, question, answer], redact=True)) == [
        [{"role": "user", "content": "头痛"}, {"role": "assistant", "content": "休息。"}]
    ]
    untrained = TrainingTurn("assistant", "休息。", trained=False)
    assert dataset_rows([greeting, question, untrained], redact=True) == []
    assert dataset_rows([], redact=True) == []
