"""A literal prefilter for the emergency regexes. Each regex costs ~0.2 ms per 10,000
characters even when nothing matches, and there are dozens: from the parsed regex we take
literals that every match must contain (e.g. 疼 or 痛 for chest pain) and run the regex only
when the text has them, a cheap substring test. A regex we cannot analyse gets no prefilter and
always runs, so this never hides a match.

The regex is parsed with CPython's own parser, `re._parser` (private, unchanged since 3.11).
Without it (another Python) there is no prefilter and matching is only slower, never different;
tests/core/safety checks that prefiltered and unfiltered matching agree."""

from __future__ import annotations

import importlib
import re
from collections.abc import Sequence
from typing import Any

_sre_parser: Any
try:  # CPython's own regex parser (private, stable since 3.11); without it: no prefilter
    _sre_parser = importlib.import_module("re._parser")
except ImportError:  # pragma: no cover
    _sre_parser = None

_MAX_CLASS_LITERALS = 16  # a character class larger than this is not worth testing

_Needs = list[frozenset[str]]  # every set must have one of its literals in the text


def _op(op: Any) -> str:
    return str(getattr(op, "name", op))


def _class_literals(items: Any) -> frozenset[str] | None:
    chars: set[str] = set()
    for op, av in items:
        name = _op(op)
        if name == "LITERAL":
            chars.add(chr(av))
        elif name == "RANGE" and av[1] - av[0] < _MAX_CLASS_LITERALS:
            chars.update(chr(c) for c in range(av[0], av[1] + 1))
        else:  # NEGATE, CATEGORY, big ranges
            return None
    return frozenset(c.lower() for c in chars) if len(chars) <= _MAX_CLASS_LITERALS else None


def _best(needs: _Needs) -> frozenset[str] | None:
    # Longer literals and fewer of them make a sharper test.
    return max(needs, key=lambda n: (min(map(len, n)), -len(n)), default=None)


def _sequence_needs(items: Any) -> _Needs:
    needs: _Needs = []
    run: list[str] = []

    def flush() -> None:
        if run:
            needs.append(frozenset({"".join(run).lower()}))
            run.clear()

    for op, av in items:
        name = _op(op)
        if name == "LITERAL":
            run.append(chr(av))
            continue
        if name in ("AT", "ASSERT", "ASSERT_NOT"):
            continue  # zero width: the characters either side are adjacent in the match
        flush()
        sub: frozenset[str] | None = None
        if name == "SUBPATTERN":
            sub = _best(_sequence_needs(av[-1]))
        elif name == "ATOMIC_GROUP":
            sub = _best(_sequence_needs(av))
        elif name == "BRANCH":
            branches = [_best(_sequence_needs(b)) for b in av[1]]
            if all(b is not None for b in branches):
                sub = frozenset().union(*(b for b in branches if b is not None))
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") and av[0] >= 1:
            sub = _best(_sequence_needs(av[2]))
        elif name == "IN":
            sub = _class_literals(av)
        if sub:
            needs.append(sub)
    flush()
    return needs


def prefilter(alternatives: Sequence[str]) -> tuple[tuple[frozenset[str], ...], ...] | None:
    if _sre_parser is None:
        return None
    result: list[tuple[frozenset[str], ...]] = []
    for alternative in alternatives:
        try:
            items = list(_sre_parser.parse(alternative).data)
        except Exception:  # pragma: no cover - the regex compiled, so this is a parser change
            return None
        # A top-level "a|b" is several alternatives, each with its own needs.
        if len(items) == 1 and _op(items[0][0]) == "BRANCH":
            branches = [_sequence_needs(b) for b in items[0][1][1]]
        else:
            branches = [_sequence_needs(items)]
        if any(not b for b in branches):
            return None  # some alternative can match without a known literal
        result.extend(tuple(b) for b in branches)
    return tuple(result)


def upper_case_literals(regex: str) -> str:
    """Upper-case letters the regex matches literally, case-sensitively ("" if none)."""
    if _sre_parser is None:
        return ""
    try:
        parsed = _sre_parser.parse(regex)
    except Exception:  # pragma: no cover
        return ""
    if parsed.state.flags & re.IGNORECASE:
        return ""
    found: list[str] = []

    def walk(items: Any, ignore_case: bool) -> None:
        for op, av in items:
            name = _op(op)
            if name == "LITERAL" and not ignore_case and chr(av) != chr(av).lower():
                found.append(chr(av))
            elif name == "IN" and not ignore_case:
                walk(av, ignore_case)
            elif name == "SUBPATTERN":
                walk(
                    av[-1],
                    (ignore_case or bool(av[1] & re.IGNORECASE)) and not av[2] & re.IGNORECASE,
                )
            elif name == "BRANCH":
                for b in av[1]:
                    walk(b, ignore_case)
            elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
                walk(av[2], ignore_case)
            elif name in ("ASSERT", "ASSERT_NOT"):
                walk(av[1], ignore_case)
            elif name == "ATOMIC_GROUP":
                walk(av, ignore_case)

    walk(parsed.data, False)
    return "".join(dict.fromkeys(found))
