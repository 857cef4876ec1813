"""Emergency notice: urgent-symptom rules that attach a notice to an answer.

The notice does not depend on the model: the gateway runs `detect_emergency` on the patient's
message (and may run `detect_emergency_in_messages` on the last few) and shows the result
whatever the model generated.  Rules live in a YAML file (`emergency_rules.yaml` next to this
module by default); `load_rules` validates a deployment's own copy.

A notice carries rule ids and the rule file's texts only, never the patient's words, so it can
be logged and cached freely.
"""

from __future__ import annotations

import bisect
import importlib
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = [
    "DEFAULT_RULES_RESOURCE",
    "EmergencyNotice",
    "RuleSet",
    "RulesError",
    "Severity",
    "default_rules",
    "detect_emergency",
    "detect_emergency_in_messages",
    "load_rules",
    "normalize",
]

DEFAULT_RULES_RESOURCE = "emergency_rules.yaml"


class RulesError(ValueError):
    """A rules file that cannot be used; the message names the file, the rule and the field."""

    def __init__(self, source: str, detail: str) -> None:
        super().__init__(f"{source}: {detail}")
        self.source = source
        self.detail = detail


class Severity(StrEnum):
    URGENT = "urgent"  # go to an emergency department soon
    CRITICAL = "critical"  # call an ambulance now

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.URGENT: 1, Severity.CRITICAL: 2}


# --- the file format ---------------------------------------------------------------------

_ID = r"^[a-z][a-z0-9_]*$"  # ids end up in API responses and logs: keep them plain


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoticeText(_Strict):
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class PatternSpec(_Strict):
    id: str = Field(pattern=_ID)
    lang: Literal["zh", "en"]
    regex: str | list[str]
    suppress_history: bool = False

    @field_validator("regex")
    @classmethod
    def _not_empty(cls, v: str | list[str]) -> str | list[str]:
        alternatives = [v] if isinstance(v, str) else v
        if not alternatives or any(not a.strip() for a in alternatives):
            raise ValueError("a regex must not be empty")
        return v

    def alternatives(self) -> list[str]:
        return [self.regex] if isinstance(self.regex, str) else list(self.regex)


class CategorySpec(_Strict):
    id: str = Field(pattern=_ID)
    severity: Severity
    description: str = ""
    # None: the file's global cues; []: a match is never cancelled (suicidal intent).
    negation_cues: list[str] | None = None
    patterns: list[PatternSpec] = Field(min_length=1)
    notice: NoticeText

    @field_validator("patterns")
    @classmethod
    def _unique_pattern_ids(cls, v: list[PatternSpec]) -> list[PatternSpec]:
        _reject_duplicates([p.id for p in v], "pattern")
        return v


class NegationSpec(_Strict):
    max_gap_tokens: int = Field(default=3, ge=0, le=20)
    filler_words: list[str] = Field(default_factory=list)  # not counted in the gap
    cues: list[str] = Field(default_factory=list)


class HistorySpec(_Strict):
    cues: list[str] = Field(default_factory=list)
    acute_cues: list[str] = Field(default_factory=list)


class RulesFile(_Strict):
    version: Literal[1]
    macros: dict[str, str] = Field(default_factory=dict)
    negation: NegationSpec = Field(default_factory=NegationSpec)
    history: HistorySpec = Field(default_factory=HistorySpec)
    # Shared notice texts, referenced from categories with YAML anchors; not used directly.
    notices: dict[str, NoticeText] = Field(default_factory=dict)
    categories: list[CategorySpec] = Field(min_length=1)

    @field_validator("macros")
    @classmethod
    def _macro_names(cls, v: dict[str, str]) -> dict[str, str]:
        for name in v:
            if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
                raise ValueError(f"macro name {name!r} must match [a-z_][a-z0-9_]*")
        return v

    @field_validator("categories")
    @classmethod
    def _unique_category_ids(cls, v: list[CategorySpec]) -> list[CategorySpec]:
        _reject_duplicates([c.id for c in v], "category")
        return v


def _reject_duplicates(ids: list[str], what: str) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise ValueError(f"duplicate {what} id {i!r}")
        seen.add(i)


# --- compiled rules ----------------------------------------------------------------------


@dataclass(frozen=True)
class CompiledPattern:
    rule_id: str  # "category.pattern"
    regex: re.Pattern[str]
    suppress_history: bool
    # Any-of (all-of (any-of literals)): the regex can only match a text for which some
    # alternative has, for each of its sets, one literal in the text.  None: always run.
    prefilter: tuple[tuple[frozenset[str], ...], ...] | None


@dataclass(frozen=True)
class CompiledCategory:
    id: str
    severity: Severity
    order: int
    patterns: tuple[CompiledPattern, ...]
    negation_cues: tuple[re.Pattern[str], ...]
    notice: NoticeText


@dataclass(frozen=True, eq=False)
class RuleSet:
    """Compiled rules; build with `load_rules` or `default_rules`."""

    source: str
    categories: tuple[CompiledCategory, ...]
    max_gap_tokens: int
    filler_words: frozenset[str]
    history: re.Pattern[str] | None
    acute: re.Pattern[str] | None
    # Every prefilter literal, by its first character: one pass over a text finds those in it.
    literals_by_first: Mapping[str, tuple[str, ...]]

    @property
    def category_ids(self) -> list[str]:
        return [c.id for c in self.categories]

    def notice_texts(self) -> set[str]:
        """Every text a notice can be made of (tests check that nothing else gets in)."""
        return {t for c in self.categories for t in (c.notice.zh, c.notice.en)}


_MACRO_REF = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


def _expand(regex: str, macros: Mapping[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in macros:
            raise KeyError(name)
        return f"(?:{macros[name]})"

    return _MACRO_REF.sub(sub, regex)


def _compile(regex: str, macros: Mapping[str, str], source: str, where: str) -> re.Pattern[str]:
    # No re.IGNORECASE: the text is lower-cased already, and case-insensitive matching costs
    # about twice the time.  An upper-case literal would silently never match, so it is an error.
    try:
        compiled = re.compile(_expand(regex, macros))
    except KeyError as e:
        raise RulesError(source, f"{where}: unknown macro {{{e.args[0]}}}") from None
    except re.error as e:
        raise RulesError(source, f"{where}: regex does not compile: {e}") from None
    upper = _upper_case_literals(compiled.pattern)
    if upper:
        raise RulesError(
            source,
            f"{where}: text is matched in lower case, so {upper!r} can never match; "
            "write patterns in lower case",
        )
    return compiled


def _compile_any(
    regexes: Sequence[str], macros: Mapping[str, str], source: str, where: str
) -> re.Pattern[str] | None:
    # Each alternative alone first, so a bad one is reported by its index.
    for i, r in enumerate(regexes):
        _compile(r, macros, source, f"{where}[{i}]")
    if not regexes:
        return None
    return _compile("|".join(f"(?:{r})" for r in regexes), macros, source, where)


def _build(spec: RulesFile, source: str) -> RuleSet:
    macros = spec.macros
    for name, body in macros.items():
        if _MACRO_REF.search(body):  # one level only: keeps expansion obvious and finite
            raise RulesError(source, f"macros.{name}: a macro must not use another macro")
        _compile(body, {}, source, f"macros.{name}")

    global_cues = tuple(
        _compile(c, macros, source, f"negation.cues[{i}]") for i, c in enumerate(spec.negation.cues)
    )
    categories = []
    for order, cat in enumerate(spec.categories):
        where_cat = f"category {cat.id!r}"
        if cat.negation_cues is None:
            cues = global_cues
        else:
            cues = tuple(
                _compile(c, macros, source, f"{where_cat}, field 'negation_cues[{i}]'")
                for i, c in enumerate(cat.negation_cues)
            )
        patterns = []
        for p in cat.patterns:
            where = f"{where_cat}, pattern {p.id!r}, field 'regex'"
            rx = _compile_any(p.alternatives(), macros, source, where)
            assert rx is not None  # the model guarantees at least one alternative
            prefilter = _prefilter([_expand(a, macros) for a in p.alternatives()])
            patterns.append(CompiledPattern(f"{cat.id}.{p.id}", rx, p.suppress_history, prefilter))
        categories.append(
            CompiledCategory(cat.id, cat.severity, order, tuple(patterns), cues, cat.notice)
        )
    return RuleSet(
        source=source,
        categories=tuple(categories),
        max_gap_tokens=spec.negation.max_gap_tokens,
        filler_words=frozenset(w.lower() for w in spec.negation.filler_words),
        history=_compile_any(spec.history.cues, macros, source, "history.cues"),
        acute=_compile_any(spec.history.acute_cues, macros, source, "history.acute_cues"),
        literals_by_first=_by_first_char(categories),
    )


def _by_first_char(categories: Sequence[CompiledCategory]) -> dict[str, tuple[str, ...]]:
    grouped: dict[str, set[str]] = {}
    for cat in categories:
        for p in cat.patterns:
            for alternative in p.prefilter or ():
                for need in alternative:
                    for literal in need:
                        grouped.setdefault(literal[0], set()).add(literal)
    return {c: tuple(sorted(lits)) for c, lits in grouped.items()}


# --- literal prefilter -------------------------------------------------------------------
#
# Each regex costs ~0.2 ms per 10,000 characters even when nothing matches, and there are
# dozens.  From the parsed regex we take literals that every match must contain (e.g. 疼 or 痛
# for chest pain) and run the regex only when the text has them: a cheap substring test.  A
# regex we cannot analyse gets no prefilter and always runs, so this never hides a match.

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


def _prefilter(alternatives: Sequence[str]) -> tuple[tuple[frozenset[str], ...], ...] | None:
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


def _upper_case_literals(regex: str) -> str:
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


def _describe_loc(raw: Any, loc: tuple[int | str, ...]) -> str:
    """('categories', 3, 'patterns', 0, 'regex') -> "categories[3] (id 'stroke') ..."."""
    parts: list[str] = []
    node = raw
    for key in loc:
        if isinstance(key, int):
            label = f"[{key}]"
            node = node[key] if isinstance(node, list) and key < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("id"), str):
                label += f" (id {node['id']!r})"
            parts.append(label)
        else:
            parts.append(f".{key}" if parts else key)
            node = node.get(key) if isinstance(node, dict) else None
    return "".join(parts) or "(top level)"


def _parse(text: str, source: str) -> RuleSet:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise RulesError(source, f"not valid YAML: {e}") from None
    try:
        spec = RulesFile.model_validate(raw)
    except ValidationError as e:
        problems = "; ".join(
            f"{_describe_loc(raw, tuple(err['loc']))}: {err['msg']}" for err in e.errors()
        )
        raise RulesError(source, f"invalid emergency rules: {problems}") from None
    return _build(spec, source)


def load_rules(path: str | os.PathLike[str]) -> RuleSet:
    """Load and validate a rules file; raises `RulesError` naming the file, rule and field."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise RulesError(str(p), f"cannot read rules file: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise RulesError(str(p), f"rules file is not UTF-8: {e}") from None
    return _parse(text, str(p))


@lru_cache(maxsize=1)
def default_rules() -> RuleSet:
    """The rules packaged with this module, read and compiled once (~0.1 s): call it at
    start-up so the first patient message does not pay for it."""
    resource = resources.files(__package__ or "services.core.safety") / DEFAULT_RULES_RESOURCE
    return _parse(resource.read_text(encoding="utf-8"), str(resource))


# --- matching ----------------------------------------------------------------------------

_APOSTROPHES = re.compile("[\u2018\u2019\u02bc`\u00b4]")  # curly and stray apostrophes
_INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u2060-\u2064\ufeff]")
_SPACES = re.compile(r"[^\S\n]+")
_NEWLINES = re.compile(r" ?\n[\n ]*")  # linear, after _SPACES (r"\s*\n\s*" is quadratic)
_CJK = "\u2e80-\u9fff\uf900-\ufaff"
_CJK_GAP = re.compile(f"(?<=[{_CJK}]) (?=[{_CJK}])")
# Clause boundaries limit how far a negation or a history cue reaches.
_CLAUSE = re.compile(r"[,.;:!?。\n]|但是|但|可是|然而|\bbut\b|\bhowever\b")
_TOKEN = re.compile(f"[{_CJK}]|[a-z0-9']+")
_NEGATION_LOOKBACK = 48  # characters; far more than max_gap_tokens needs


def normalize(text: str) -> str:
    """The form rules match against; the caller's text is not changed or kept."""
    t = unicodedata.normalize("NFKC", text)
    t = _INVISIBLE.sub("", _APOSTROPHES.sub("'", t)).lower()
    t = _NEWLINES.sub("\n", _SPACES.sub(" ", t))
    return _CJK_GAP.sub("", t).strip()


class _Clauses:
    """Clause boundaries and prefilter literals of one normalised text, found once and shared
    by all rules."""

    def __init__(self, text: str, rules: RuleSet) -> None:
        self.text = text
        self._starts: list[int] = []  # where each boundary ends (a clause may start there)
        self._ends: list[int] = []  # where each boundary starts (a clause ends there)
        for m in _CLAUSE.finditer(text):
            self._starts.append(m.end())
            self._ends.append(m.start())
        # Only literals whose first character occurs are searched for: a few dozen substring
        # tests in C instead of a thousand, and no per-rule work in Python.
        by_first = rules.literals_by_first
        self.present = frozenset(
            literal
            for c in set(text).intersection(by_first)
            for literal in by_first[c]
            if literal in text
        )

    def start_before(self, pos: int) -> int:
        i = bisect.bisect_right(self._starts, pos) - 1
        return self._starts[i] if i >= 0 else 0

    def end_after(self, pos: int) -> int:
        i = bisect.bisect_left(self._ends, pos)
        return self._ends[i] if i < len(self._ends) else len(self.text)

    def may_match(self, p: CompiledPattern) -> bool:
        if p.prefilter is None:
            return True
        present = self.present
        for alternative in p.prefilter:  # plain loops: generators cost more than the tests
            for need in alternative:
                if need.isdisjoint(present):
                    break
            else:
                return True
        return False


def _negated(
    m: re.Match[str], cues: Sequence[re.Pattern[str]], rules: RuleSet, cl: _Clauses
) -> bool:
    start = m.start()
    window = cl.text[max(cl.start_before(start), start - _NEGATION_LOOKBACK) : start]
    for cue in cues:
        for c in cue.finditer(window):
            tokens = [t for t in _TOKEN.findall(window, c.end()) if t not in rules.filler_words]
            if len(tokens) <= rules.max_gap_tokens:
                return True
    return False


def _historical(m: re.Match[str], rules: RuleSet, cl: _Clauses) -> bool:
    if rules.history is None:
        return False
    clause = cl.text[cl.start_before(m.start()) : cl.end_after(m.end())]
    if not rules.history.search(clause):
        return False
    return rules.acute is None or not rules.acute.search(clause)


def _first_live_match(
    p: CompiledPattern, cat: CompiledCategory, rules: RuleSet, cl: _Clauses
) -> bool:
    if not cl.may_match(p):
        return False
    pos = 0
    while (m := p.regex.search(cl.text, pos)) is not None:
        if not (
            (cat.negation_cues and _negated(m, cat.negation_cues, rules, cl))
            or (p.suppress_history and _historical(m, rules, cl))
        ):
            return True
        pos = m.start() + 1  # a cancelled match may overlap a live one
    return False


class EmergencyNotice(BaseModel):
    """What the gateway attaches to an answer: category and rule ids and the rules' texts."""

    model_config = ConfigDict(frozen=True)

    categories: list[str]  # category ids, most severe first
    severity: Severity
    message_zh: str
    message_en: str
    matched: list[str]  # "category.pattern" rule ids; never the patient's text

    def message(self, lang: str = "zh") -> str:
        return self.message_en if lang.lower().startswith("en") else self.message_zh


def detect_emergency(text: str, rules: RuleSet | None = None) -> EmergencyNotice | None:
    """The notice for `text`, or None when no urgent-symptom rule fires."""
    rules = rules or default_rules()
    cl = _Clauses(normalize(text), rules)
    if not cl.text:
        return None
    fired: list[tuple[CompiledCategory, list[str]]] = []
    for cat in rules.categories:
        matched = [p.rule_id for p in cat.patterns if _first_live_match(p, cat, rules, cl)]
        if matched:
            fired.append((cat, matched))
    if not fired:
        return None
    fired.sort(key=lambda f: (-f[0].severity.rank, f[0].order))
    return EmergencyNotice(
        categories=[c.id for c, _ in fired],
        severity=fired[0][0].severity,
        message_zh=_join(c.notice.zh for c, _ in fired),
        message_en=_join(c.notice.en for c, _ in fired),
        matched=[rule for _, rules_ in fired for rule in rules_],
    )


def detect_emergency_in_messages(
    messages: Iterable[str], rules: RuleSet | None = None
) -> EmergencyNotice | None:
    """The notice for several messages (e.g. the session's last few patient turns).

    Messages are joined by newlines, a clause boundary, so a negation in one message never
    cancels a symptom in the next."""
    return detect_emergency("\n".join(messages), rules)


def _join(texts: Iterable[str]) -> str:
    # Several categories often share one generic text: show it once.
    return "\n".join(dict.fromkeys(t.strip() for t in texts))
