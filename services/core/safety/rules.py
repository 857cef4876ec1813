"""The emergency rules: the YAML file's schema, its validation with errors that name the file,
rule and field, and its compilation into a `RuleSet` (regexes with macros expanded, each with
its literal prefilter). `emergency_rules.yaml` beside this module is the default; `load_rules`
validates a deployment's own copy. The reading, validation and regex helpers below
(`validate_yaml`, `read_rules_file`, `compile_rule`) serve the prescription rules too."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from . import prefilter as literal_prefilter

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
    upper = literal_prefilter.upper_case_literals(compiled.pattern)
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
            needs = literal_prefilter.prefilter([_expand(a, macros) for a in p.alternatives()])
            patterns.append(CompiledPattern(f"{cat.id}.{p.id}", rx, p.suppress_history, needs))
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


_Spec = TypeVar("_Spec", bound=BaseModel)


def validate_yaml(text: str, source: str, schema: type[_Spec], what: str) -> _Spec:
    """A rules file's YAML checked against `schema`; a `RulesError` names the file and, for
    each problem, the rule (by id) and the field. Shared by every rules file of this package."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise RulesError(source, f"not valid YAML: {e}") from None
    try:
        return schema.model_validate(raw)
    except ValidationError as e:
        problems = "; ".join(
            f"{_describe_loc(raw, tuple(err['loc']))}: {err['msg']}" for err in e.errors()
        )
        raise RulesError(source, f"invalid {what}: {problems}") from None


def read_rules_file(path: str | os.PathLike[str]) -> tuple[str, str]:
    """(text, source) of a deployment's rules file; a `RulesError` when it cannot be read."""
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8"), str(p)
    except OSError as e:
        raise RulesError(str(p), f"cannot read rules file: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise RulesError(str(p), f"rules file is not UTF-8: {e}") from None


def read_packaged_rules(name: str) -> tuple[str, str]:
    """(text, source) of a rules file shipped beside this module."""
    resource = resources.files(__package__ or "services.core.safety") / name
    return resource.read_text(encoding="utf-8"), str(resource)


def compile_rule(regex: str, source: str, where: str) -> re.Pattern[str]:
    """One regex of a rules file (no macros), or a `RulesError` naming where it is; an
    upper-case literal is an error too, since rules see lower-cased text."""
    return _compile(regex, {}, source, where)


def _parse(text: str, source: str) -> RuleSet:
    return _build(validate_yaml(text, source, RulesFile, "emergency rules"), source)


def load_rules(path: str | os.PathLike[str]) -> RuleSet:
    """Load and validate a rules file; raises `RulesError` naming the file, rule and field."""
    return _parse(*read_rules_file(path))


@lru_cache(maxsize=1)
def default_rules() -> RuleSet:
    """The rules packaged with this module, read and compiled once (~0.1 s): call it at
    start-up so the first patient message does not pay for it."""
    return _parse(*read_packaged_rules(DEFAULT_RULES_RESOURCE))
