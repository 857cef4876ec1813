"""Matching the emergency rules against a patient's words: the normal form rules see,
clauses (a negation or a history cue reaches only so far), and the notice, which carries rule
ids and the rule file's texts only, never the patient's words, so it can be logged and cached."""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict

from .rules import CompiledCategory, CompiledPattern, RuleSet, Severity, default_rules

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
