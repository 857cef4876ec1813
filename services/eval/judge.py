"""Reading a judge's reply: the four 1–5 scores, whatever the format drifted to (Markdown,
JSON, full-width colons, Chinese criterion names, "4/5", explanations around them)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

from .prompts import CRITERIA

Scores = dict[str, float]

# Names a judge uses for each criterion, English (any case, spaces or underscores) or Chinese.
_ALIASES: dict[str, tuple[str, ...]] = {
    "Proactivity": (r"pro[\s_-]*activ(?:ity|eness)", "主动性"),
    "Accuracy": (r"accuracy", "准确性", "准确度"),
    "Helpfulness": (r"helpful(?:ness)?", "有用性", "帮助性", "实用性"),
    "Linguistic Quality": (r"(?:linguistic|language)[\s_-]*quality", "语言质量", "语言表达"),
}
# A name, then at most 24 characters that are neither digits nor line breaks (": ", "** - ",
# "\": ", " score is ", "得分为"), then the score and an optional "/5" or "out of 5".
_SCORE = r"[^\d\n]{0,24}?(\d+(?:\.\d+)?)(?:\s*(?:/|out\s+of)\s*(\d+))?"
_PATTERNS = {
    name: re.compile(rf"(?:{'|'.join(aliases)}){_SCORE}", re.IGNORECASE)
    for name, aliases in _ALIASES.items()
}
_SCALE_MENTION = re.compile(r"[(（]?\b1\s*(?:-|~|–|—|到|至|to)\s*5\b[)）]?(?!\s*/)")


class JudgeParseError(ValueError):
    """The reply does not hold a valid score for every criterion."""


def _normalize(text: str) -> str:
    # Full-width colons and digits to ASCII; Markdown emphasis and code fences out; "1-5"
    # scale mentions out, so "Proactivity (1-5): 4" reads 4, not 1.
    text = unicodedata.normalize("NFKC", text)
    text = re.sub(r"[*#`_]{1,3}(?=\S)|(?<=\S)[*`]{1,3}", " ", text)
    return _SCALE_MENTION.sub(" ", text)


def parse_scores(reply: str) -> Scores:
    """The four scores in CRITERIA order; raises JudgeParseError naming what is missing or
    out of range. A criterion's first valid score counts (a judge that echoes the
    "Proactivity: x" template before answering is read by its answer)."""
    text = _normalize(reply)
    scores: Scores = {}
    problems: list[str] = []
    for name in CRITERIA:
        bad: str | None = None
        for m in _PATTERNS[name].finditer(text):
            value, denominator = float(m.group(1)), m.group(2)
            if denominator is not None and denominator != "5":
                bad = f"{name} scored out of {denominator}"
                continue
            if 1 <= value <= 5:
                scores[name] = value
                break
            bad = f"{name} {m.group(1)} is outside 1–5"
        if name not in scores:
            problems.append(bad or f"no {name} score")
    if problems:
        raise JudgeParseError("; ".join(problems))
    return scores


def format_scores(scores: Mapping[str, float]) -> str:
    """The published form: `Proactivity: 5\\nAccuracy: 4\\n…` (integers without ".0")."""

    def show(v: float) -> str:
        return str(int(v)) if float(v).is_integer() else f"{v:g}"

    return "\n".join(f"{name}: {show(scores[name])}" for name in CRITERIA)
