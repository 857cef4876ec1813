"""Readers for the dialogue formats seen in the wild, detected per JSON object.

- DISC-MedLLM: {"conversation": [{"role": "user"|"assistant", "content": ...}]}
- OpenAI:      {"messages": [{"role": "system"|"user"|"assistant", "content": ..., "weight"?: 0|1}]}
- Firefly:     {"conversation": [{"human": ..., "assistant": ...}], "system"?: ...}

Every structural problem is returned as an `Issue` (a code integrators know from OpenAI's
fine-tuning checks, where in the row, how to fix) instead of raising, so a validator can
report all of them for a line.
"""

from __future__ import annotations

from dataclasses import dataclass
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


def parse_conversation(obj: Any) -> tuple[Conversation | None, list[Issue]]:
    """Detect the format of one decoded JSON value and read it.

    Returns the conversation (None when any error was found) and all issues, warnings included.
    """
    if not isinstance(obj, dict):
        kind = type(obj).__name__
        return None, [Issue("missing_messages", f"each line must be a JSON object, got {kind}")]
    if "messages" in obj:
        return _read_role_list(obj["messages"], "messages", "openai", allow_system=True)
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
    return _read_role_list(conv, "conversation", "disc", allow_system=True)


def to_conversation(obj: Any) -> Conversation:
    """Like parse_conversation, but raises ConversationError on any error."""
    conversation, issues = parse_conversation(obj)
    if conversation is None:
        raise ConversationError([i for i in issues if i.severity == "error"])
    return conversation


def _read_role_list(
    items: Any, key: str, fmt: SourceFormat, *, allow_system: bool
) -> tuple[Conversation | None, list[Issue]]:
    if not isinstance(items, list) or not items:
        return None, [Issue("missing_messages", f'"{key}" must be a non-empty list', key)]
    issues: list[Issue] = []
    turns: list[Turn] = []
    system: str | None = None
    unknown_role = False  # the role sequence is unknown: order checks would only cascade
    for i, item in enumerate(items):
        where = f"{key}[{i}]"
        if not isinstance(item, dict):
            issues.append(Issue("invalid_field", "each message must be an object", where))
            continue
        role = item.get("role")
        if role not in _ROLES:
            unknown_role = True
            issues.append(
                Issue(
                    "unrecognized_role",
                    f"role {role!r} is not one of system, user, assistant",
                    f"{where}.role",
                )
            )
            continue
        raw_content = item.get("content")
        content_ok = isinstance(raw_content, str)
        # A bad content keeps its turn (as "") so the role still counts in the order checks.
        content: str = raw_content if isinstance(raw_content, str) else ""
        if not content_ok:
            issues.append(Issue("invalid_field", "content must be a string", f"{where}.content"))
        weight = item.get("weight", 1)
        if "weight" in item and (role != "assistant" or weight not in (0, 1) or weight is True):
            issues.append(
                Issue(
                    "invalid_weight",
                    f"weight must be 0 or 1 and only on assistant messages, got {weight!r}"
                    f" on a {role} message",
                    f"{where}.weight",
                )
            )
            weight = 1
        if role == "system":
            if turns or system is not None or not allow_system:
                issues.append(
                    Issue(
                        "unrecognized_role",
                        "a system message is only allowed first",
                        f"{where}.role",
                    )
                )
            else:
                system = content
            continue
        if content_ok and not content.strip():
            issues.append(Issue("empty_content", f"{role} message is empty", f"{where}.content"))
        turns.append(Turn.model_construct(role=role, content=content, weight=weight))
    if not unknown_role:
        issues += _check_order(turns, key)
    return _finish(turns, system, fmt, issues)


def _read_firefly(items: list[Any], system: Any) -> tuple[Conversation | None, list[Issue]]:
    issues: list[Issue] = []
    turns: list[Turn] = []
    if system is not None and not isinstance(system, str):
        issues.append(Issue("invalid_field", "system must be a string", "system"))
        system = None
    for i, item in enumerate(items):
        where = f"conversation[{i}]"
        if not isinstance(item, dict):
            issues.append(Issue("invalid_field", "each round must be an object", where))
            continue
        for field, role in (("human", "user"), ("assistant", "assistant")):
            content = item.get(field)
            if not isinstance(content, str):
                issues.append(
                    Issue(
                        "invalid_field",
                        f'a Firefly round needs a string "{field}"',
                        f"{where}.{field}",
                    )
                )
                continue
            if not content.strip():
                issues.append(Issue("empty_content", f"{field} text is empty", f"{where}.{field}"))
            turns.append(Turn.model_construct(role=role, content=content, weight=1))
    return _finish(turns, system or None, "firefly", issues)


def _check_order(turns: list[Turn], key: str) -> list[Issue]:
    issues: list[Issue] = []
    if turns and turns[0].role != "user":
        issues.append(
            Issue(
                "first_turn_not_user",
                "the first message after an optional system message must be from the user",
                f"{key}[0].role",
            )
        )
    for i in range(1, len(turns)):
        if turns[i].role == turns[i - 1].role:
            issues.append(
                Issue(
                    "consecutive_roles",
                    f"two {turns[i].role} messages in a row (messages {i - 1} and {i} after"
                    " any system message); merge them or add the missing turn",
                    key,
                )
            )
    if turns and turns[-1].role == "user" and len(turns) > 1:
        issues.append(
            Issue(
                "trailing_user_turn",
                "ends with a user message that has no answer; it is kept as context only",
                key,
                "warning",
            )
        )
    return issues


def _finish(
    turns: list[Turn], system: str | None, fmt: SourceFormat, issues: list[Issue]
) -> tuple[Conversation | None, list[Issue]]:
    if not any(t.role == "assistant" for t in turns):
        issues.append(Issue("no_assistant_turn", "no assistant message to learn from"))
    elif not any(t.role == "assistant" and t.weight == 1 for t in turns):
        issues.append(
            Issue(
                "no_trained_turn",
                "every assistant message has weight 0: the row trains nothing",
                severity="warning",
            )
        )
    if any(i.severity == "error" for i in issues):
        return None, issues
    # The checks above are the validation; model_construct skips a second pass (hot path).
    conversation = Conversation.model_construct(
        turns=tuple(turns), system=system, source_format=fmt
    )
    return conversation, issues
