"""The prescription notice: an answer that names a prescription-only medicine with a dose in
the same clause is told, beside the model's text, that prescribing is a doctor's decision.
Rules, not the model, like the emergency notice (prescription_rules.yaml beside this module)."""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict

from .match import normalize

RULES_RESOURCE = "prescription_rules.yaml"
_CLAUSE = re.compile(r"[。！？；;!?\n]+|(?<![0-9])[.](?![0-9])")


class PrescriptionNotice(BaseModel):
    model_config = ConfigDict(frozen=True)

    classes: list[str]  # medicine classes named, e.g. "antibiotic"
    message_zh: str
    message_en: str
    matched: list[str]  # "class.dose" rule ids; never the answer's text

    def message(self, lang: str = "zh") -> str:
        return self.message_en if lang.lower().startswith("en") else self.message_zh


class _Rules:
    def __init__(self, raw: dict[str, object]) -> None:
        notice = raw["notice"]
        assert isinstance(notice, dict)
        self.zh, self.en = str(notice["zh"]).strip(), str(notice["en"]).strip()
        medicines = raw["medicines"]
        doses = raw["doses"]
        assert isinstance(medicines, dict) and isinstance(doses, dict)
        self.medicines = {
            cls: re.compile("|".join(f"(?:{normalize(str(n))})" for n in names))
            for cls, names in medicines.items()
        }
        self.doses = {name: re.compile(str(p)) for name, p in doses.items()}


@lru_cache(maxsize=1)
def _rules() -> _Rules:
    text = resources.files(__package__).joinpath(RULES_RESOURCE).read_text(encoding="utf-8")
    return _Rules(yaml.safe_load(text))


def detect_prescription(answer: str) -> PrescriptionNotice | None:
    """The notice when a clause of `answer` names a prescription-only medicine and a dose."""
    rules = _rules()
    classes: list[str] = []
    matched: list[str] = []
    for clause in _CLAUSE.split(normalize(answer)):
        doses = [name for name, p in rules.doses.items() if p.search(clause)]
        if not doses:
            continue
        for cls, pattern in rules.medicines.items():
            if pattern.search(clause):
                classes += [cls] if cls not in classes else []
                matched += [f"{cls}.{d}" for d in doses if f"{cls}.{d}" not in matched]
    if not classes:
        return None
    return PrescriptionNotice(
        classes=classes, message_zh=rules.zh, message_en=rules.en, matched=matched
    )
