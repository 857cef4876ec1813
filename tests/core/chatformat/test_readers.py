from __future__ import annotations

from typing import Any

import pytest

from services.core.chatformat import ConversationError, parse_conversation, to_conversation


def codes(obj: Any) -> list[str]:
    return [i.code for i in parse_conversation(obj)[1]]


def test_disc_format() -> None:
    conv = to_conversation(
        {
            "_id": "x",
            "conversation": [
                {"role": "user", "content": "头痛"},
                {"role": "assistant", "content": "多休息"},
            ],
        }
    )
    assert conv.source_format == "disc"
    assert [(t.role, t.content, t.weight) for t in conv.turns] == [
        ("user", "头痛", 1),
        ("assistant", "多休息", 1),
    ]
    assert conv.system is None


def test_openai_format_with_system_and_weights() -> None:
    conv = to_conversation(
        {
            "messages": [
                {"role": "system", "content": "你是医生"},
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": "b", "weight": 0},
                {"role": "user", "content": "c"},
                {"role": "assistant", "content": "d", "weight": 1},
            ]
        }
    )
    assert conv.source_format == "openai"
    assert conv.system == "你是医生"
    assert [t.weight for t in conv.turns] == [1, 0, 1, 1]


def test_firefly_format() -> None:
    conv = to_conversation(
        {
            "system": "s",
            "conversation": [
                {"human": "q1", "assistant": "a1"},
                {"human": "q2", "assistant": "a2"},
            ],
        }
    )
    assert conv.source_format == "firefly"
    assert conv.system == "s"
    assert [(t.role, t.content) for t in conv.turns] == [
        ("user", "q1"),
        ("assistant", "a1"),
        ("user", "q2"),
        ("assistant", "a2"),
    ]


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ([1, 2], ["missing_messages"]),
        ({"foo": 1}, ["missing_messages"]),
        ({"messages": []}, ["missing_messages"]),
        ({"messages": "hi"}, ["missing_messages"]),
        (
            {
                "messages": [
                    {"role": "doctor", "content": "x"},
                    {"role": "assistant", "content": "y"},
                ]
            },
            ["unrecognized_role"],
        ),
        (
            {"messages": [{"role": "assistant", "content": "x"}, {"role": "user", "content": "y"}]},
            ["first_turn_not_user"],
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "x"},
                    {"role": "user", "content": "y"},
                    {"role": "assistant", "content": "z"},
                ]
            },
            ["consecutive_roles"],
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "  "},
                    {"role": "assistant", "content": "z"},
                ]
            },
            ["empty_content"],
        ),
        ({"messages": [{"role": "user", "content": "x"}]}, ["no_assistant_turn"]),
        (
            {
                "messages": [
                    {"role": "user", "content": "x"},
                    {"role": "assistant", "content": "y", "weight": 2},
                ]
            },
            ["invalid_weight"],
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "x", "weight": 1},
                    {"role": "assistant", "content": "y"},
                ]
            },
            ["invalid_weight"],
        ),
        (
            {"messages": [{"role": "user", "content": 5}, {"role": "assistant", "content": "y"}]},
            ["invalid_field"],
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "x"},
                    {"role": "system", "content": "s"},
                    {"role": "assistant", "content": "y"},
                ]
            },
            ["unrecognized_role"],
        ),
        ({"conversation": [{"human": "q"}]}, ["invalid_field", "no_assistant_turn"]),
    ],
)
def test_structural_errors(obj: Any, expected: list[str]) -> None:
    conversation, issues = parse_conversation(obj)
    assert conversation is None
    assert [i.code for i in issues if i.severity == "error"] == expected
    with pytest.raises(ConversationError):
        to_conversation(obj)


def test_warnings_do_not_reject() -> None:
    conv, issues = parse_conversation(
        {
            "messages": [
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": "b", "weight": 0},
                {"role": "user", "content": "c"},
            ]
        }
    )
    assert conv is not None
    assert sorted(i.code for i in issues) == ["no_trained_turn", "trailing_user_turn"]
    assert all(i.severity == "warning" for i in issues)


def test_every_error_in_a_row_is_reported() -> None:
    found = codes(
        {
            "messages": [
                {"role": "user", "content": ""},
                {"role": "assistant", "content": "x", "weight": "1"},
                {"role": "robot", "content": "z"},
            ]
        }
    )
    assert found == ["empty_content", "invalid_weight", "unrecognized_role"]


def test_all_shipped_rows_read(sft_rows: list[dict[str, Any]]) -> None:
    for row in sft_rows:
        conv = to_conversation(row)
        assert conv.turns[0].role == "user"
