"""The prescription notice: an answer that names a prescription-only medicine with a dose in
the same sentence is told, beside the model's text, that prescribing is a doctor's decision.
Rules, not the model, like the emergency notice: `prescription_rules.yaml` beside this module
is the default, `load_prescription_rules` validates a deployment's own copy. Reading,
validation and normalisation are the emergency rules' (rules.py, match.py)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .match import normalize
from .rules import (
    NoticeText,
    compile_rule,
    read_packaged_rules,
    read_rules_file,
    validate_yaml,
)

DEFAULT_PRESCRIPTION_RULES_RESOURCE = "prescription_rules.yaml"

# Sentence ends: a dose and a medicine count together only inside one. Commas do not end a
# sentence ("阿莫西林0.5g，每日三次"); a full stop between digits is a decimal point. Applied to
# the normal form, where ！？；： are ASCII already.
_SENTENCE_END = re.compile(r"[。!?;\n]+|(?<![0-9])\.|\.(?![0-9])")

_ID = r"^[a-z][a-z0-9_]*$"  # ids end up in API responses and logs: keep them plain


class PrescriptionRulesFile(BaseModel):
    """The file's schema (see the comment at the top of prescription_rules.yaml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    notice: NoticeText
    medicines: dict[str, list[str]] = Field(min_length=1)
    doses: dict[str, str] = Field(min_length=1)

    @field_validator("medicines", "doses")
    @classmethod
    def _plain_ids(cls, v: dict[str, object]) -> dict[str, object]:
        for key, value in v.items():
            if not re.fullmatch(_ID, key):
                raise ValueError(f"id {key!r} must match [a-z][a-z0-9_]*")
            if not value or (isinstance(value, list) and any(not str(n).strip() for n in value)):
                raise ValueError(f"{key!r} must not be empty")
        return v


@dataclass(frozen=True, eq=False)
class PrescriptionRules:
    """Compiled rules; build with `load_prescription_rules` or `default_prescription_rules`."""

    source: str
    notice: NoticeText
    medicines: tuple[tuple[str, re.Pattern[str]], ...]  # (class id, any of its names), in order
    doses: tuple[tuple[str, re.Pattern[str]], ...]  # (dose id, pattern), in order


def _as_word(name: str) -> str:
    # An English name stands as a word; for a Chinese one the look-arounds are always true.
    return f"(?<![a-z])(?:{name})(?![a-z])"


def _build(spec: PrescriptionRulesFile, source: str) -> PrescriptionRules:
    medicines = []
    for cls, names in spec.medicines.items():
        for i, name in enumerate(names):  # each alone first, so an error names it
            compile_rule(name, source, f"medicines.{cls}[{i}]")
        either = "|".join(_as_word(n.strip()) for n in names)
        medicines.append((cls, compile_rule(either, source, f"medicines.{cls}")))
    doses = tuple((d, compile_rule(rx, source, f"doses.{d}")) for d, rx in spec.doses.items())
    return PrescriptionRules(source, spec.notice, tuple(medicines), doses)


def _parse(text: str, source: str) -> PrescriptionRules:
    return _build(validate_yaml(text, source, PrescriptionRulesFile, "prescription rules"), source)


def load_prescription_rules(path: str | os.PathLike[str]) -> PrescriptionRules:
    """Load and validate a prescription rules file; raises `RulesError` naming the file and
    the field."""
    return _parse(*read_rules_file(path))


@lru_cache(maxsize=1)
def default_prescription_rules() -> PrescriptionRules:
    """The rules packaged with this module, read and compiled once."""
    return _parse(*read_packaged_rules(DEFAULT_PRESCRIPTION_RULES_RESOURCE))


class PrescriptionNotice(BaseModel):
    """What the gateway attaches to an answer: classes, rule ids and the rules' texts."""

    model_config = ConfigDict(frozen=True)

    classes: list[str]  # medicine class ids named with a dose, in the file's order
    message_zh: str
    message_en: str
    matched: list[str]  # "class.dose" rule ids; never the answer's text

    def message(self, lang: str = "zh") -> str:
        return self.message_en if lang.lower().startswith("en") else self.message_zh


def detect_prescription(
    answer: str, rules: PrescriptionRules | None = None
) -> PrescriptionNotice | None:
    """The notice when one sentence of `answer` names a prescription-only medicine and a dose;
    None otherwise (a medicine without a dose, a dose of anything else)."""
    rules = rules or default_prescription_rules()
    classes: list[str] = []
    matched: list[str] = []
    for sentence in _SENTENCE_END.split(normalize(answer)):
        doses = [d for d, rx in rules.doses if rx.search(sentence)]
        if not doses:
            continue
        for cls, rx in rules.medicines:
            if rx.search(sentence):
                if cls not in classes:
                    classes.append(cls)
                matched += [r for d in doses if (r := f"{cls}.{d}") not in matched]
    if not classes:
        return None
    return PrescriptionNotice(
        classes=classes,
        message_zh=rules.notice.zh.strip(),
        message_en=rules.notice.en.strip(),
        matched=matched,
    )
