"""Readers for the dialogue formats seen in the wild, detected per JSON object.

- DISC-MedLLM: {"conversation": [{"role": "user"|"assistant", "content": ...}]}
- OpenAI:      {"messages": [{"role": "system"|"user"|"assistant", "content": ..., "weight"?: 0|1}]}
- Firefly:     {"conversation": [{"human": ..., "assistant": ...}], "system"?: ...}

Every structural problem is returned as an `Issue` (a code integrators know from OpenAI's
fine-tuning checks, where in the row, how to fix) instead of raising, so a validator can
report all of them for a line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .conversation import Conversation, SourceFormat, Turn

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Issue:
    code: str
    message: str
    param: str | None = None
    severity: Severity = "error"


class ConversationError(ValueError):
    """A row that cannot become a Conversation; carries every issue found."""

    def __init__(self, issues: list[Issue]):
        self.issues = issues
        super().__init__("; ".join(f"{i.code}: {i.message}" for i in issues))


_ROLES = ("system", "user", "assistant")


@dataclass(slots=True)
class Row:
    """What a reader found in one row: parallel lists, no per-turn objects.

    The validator's hot path works on this (a pydantic object per turn costs more than
    parsing the JSON); `to_conversation()` gives the Conversation record everything else uses.
    """

    roles: list[str] = field(default_factory=list)
    contents: list[str] = field(default_factory=list)
    weights: list[int] = field(default_factory=list)
    system: str | None = None
    source_format: SourceFormat = "internal"

    @property
    def has_trained_turn(self) -> bool:
        return any(r == "assistant" and w for r, w in zip(self.roles, self.weights, strict=True))

    def to_conversation(self) -> Conversation:
        # The reader already validated every field; model_construct skips a second pass.
        turns = tuple(
            Turn.model_construct(role=r, content=c, weight=w)
            for r, c, w in zip(self.roles, self.contents, self.weights, strict=True)
        )
        return Conversation.model_construct(
            turns=turns, system=self.system, source_format=self.source_format
        )


def read_row(obj: Any) -> tuple[Row | None, list[Issue]]:
    """Detect the format of one decoded JSON value and read it.

    Returns the row (None when any error was found) and all issues, warnings included.
    """
    if not isinstance(obj, dict):
        kind = type(obj).__name__
        return None, [Issue("missing_messages", f"each line must be a JSON object, got {kind}")]
    if "messages" in obj:
        return _read_role_list(obj["messages"], "messages", "openai")
    conv = obj.get("conversation")
    if conv is None:
        return None, [
            Issue(
                "missing_messages",
                'no "messages" (OpenAI) or "conversation" (DISC-MedLLM, Firefly) list',
            )
        ]
    if isinstance(conv, list) and conv and isinstance(conv[0], dict) and "role" not in conv[0]:
        return _read_firefly(conv, obj.get("system"))
    return _read_role_list(conv, "conversation", "disc")


def parse_conversation(obj: Any) -> tuple[Conversation | None, list[Issue]]:
    """read_row, returning the Conversation record."""
    row, issues = read_row(obj)
    return (row.to_conversation() if row is not None else None), issues


def to_conversation(obj: Any) -> Conversation:
    """Like parse_conversation, but raises ConversationError on any error."""
    conversation, issues = parse_conversation(obj)
    if conversation is None:
        raise ConversationError([i for i in issues if i.severity == "error"])
    return conversation


def _read_role_list(items: Any, key: str, fmt: SourceFormat) -> tuple[Row | None, list[Issue]]:
    if not isinstance(items, list) or not items:
        return None, [Issue("missing_messages", f'"{key}" must be a non-empty list', key)]
    issues: list[Issue] = []
    row = Row(source_format=fmt)
    unknown_role = False  # the role sequence is unknown: order checks would only cascade
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            issues.append(Issue("invalid_field", "each message must be an object", f"{key}[{i}]"))
            continue
        role = item.get("role")
        content = item.get("content")
        if role not in _ROLES:
            unknown_role = True
            issues.append(
                Issue(
                    "unrecognized_role",
                    f"role {role!r} is not one of system, user, assistant",
                    f"{key}[{i}].role",
                )
            )
            continue
        weight = 1
        if "weight" in item:
            weight = item["weight"]
            if role != "assistant" or weight not in (0, 1) or isinstance(weight, bool):
                issues.append(
                    Issue(
                        "invalid_weight",
                        f"weight must be 0 or 1 and only on assistant messages, got {weight!r}"
                        f" on a {role} message",
                        f"{key}[{i}].weight",
                    )
                )
                weight = 1
        if type(content) is not str:
            issues.append(Issue("invalid_field", "content must be a string", f"{key}[{i}].content"))
            content = None
        elif role != "system" and (not content or content.isspace()):
            issues.append(Issue("empty_content", f"{role} message is empty", f"{key}[{i}].content"))
        if role == "system":
            if row.roles or row.system is not None:
                issues.append(
                    Issue(
                        "unrecognized_role",
                        "a system message is only allowed first",
                        f"{key}[{i}].role",
                    )
                )
            else:
                row.system = content
            continue
        # A bad content keeps its turn (as "") so the role still counts in the order checks.
        row.roles.append(role)
        row.contents.append(content or "")
        row.weights.append(weight)
    if not unknown_role:
        _check_order(row.roles, key, issues)
    return _finish(row, issues)


def _read_firefly(items: list[Any], system: Any) -> tuple[Row | None, list[Issue]]:
    issues: list[Issue] = []
    if system is not None and type(system) is not str:
        issues.append(Issue("invalid_field", "system must be a string", "system"))
        system = None
    row = Row(system=system or None, source_format="firefly")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            issues.append(
                Issue("invalid_field", "each round must be an object", f"conversation[{i}]")
            )
            continue
        for field_name, role in (("human", "user"), ("assistant", "assistant")):
            content = item.get(field_name)
            where = f"conversation[{i}].{field_name}"
            if type(content) is not str:
                issues.append(
                    Issue("invalid_field", f'a Firefly round needs a string "{field_name}"', where)
                )
                continue
            if not content or content.isspace():
                issues.append(Issue("empty_content", f"{field_name} text is empty", where))
            row.roles.append(role)
            row.contents.append(content)
            row.weights.append(1)
    return _finish(row, issues)


def _check_order(roles: list[str], key: str, issues: list[Issue]) -> None:
    if roles and roles[0] != "user":
        issues.append(
            Issue(
                "first_turn_not_user",
                "the first message after an optional system message must be from the user",
                f"{key}[0].role",
            )
        )
    for i in range(1, len(roles)):
        if roles[i] == roles[i - 1]:
            issues.append(
                Issue(
                    "consecutive_roles",
                    f"two {roles[i]} messages in a row (messages {i - 1} and {i} after"
                    " any system message); merge them or add the missing turn",
                    key,
                )
            )
    if len(roles) > 1 and roles[-1] == "user":
        issues.append(
            Issue(
                "trailing_user_turn",
                "ends with a user message that has no answer; it is kept as context only",
                key,
                "warning",
            )
        )


def _finish(row: Row, issues: list[Issue]) -> tuple[Row | None, list[Issue]]:
    if "assistant" not in row.roles:
        issues.append(Issue("no_assistant_turn", "no assistant message to learn from"))
    elif not row.has_trained_turn:
        issues.append(
            Issue(
                "no_trained_turn",
                "every assistant message has weight 0: the row trains nothing",
                severity="warning",
            )
        )
    if any(i.severity == "error" for i in issues):
        return None, issues
    return row, issues
