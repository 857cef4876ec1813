"""PHI redaction: names, phone and ID numbers, addresses, emails and record numbers in Chinese
and English text become placeholders (`[PHONE]`, `[NAME]`, ...).

Applied to whatever leaves the request path (log lines, error reports) and, by setting, to
conversations exported as datasets. Precision matters as much as recall there: a redactor
that eats "血压 120/80" or "500mg" ruins the data, so numbers are only taken in shapes that
are identifiers (an 11-digit mobile number, an 18-character ID with a valid date and check
digit), and names only after a cue ("我叫", "患者", "my name is", "Dr.").

Rules are data: `Redactor.with_extra(path)` adds a deployment's own patterns from YAML
(`- {label: MRN, regex: '...'}`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

# The most common Chinese surnames (about 85% of the population): a name cue must be
# followed by one of them, so "我是头痛" stays and "我叫王小明" goes.
_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝"
    "龚邵万钱严覃武戴莫孔向汤"
)
_CJK = "\u4e00-\u9fff"
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


@dataclass(frozen=True)
class Rule:
    label: str
    regex: re.Pattern[str]
    group: int = 0  # the part replaced (a cue before a name stays)


def _valid_cn_id(number: str) -> bool:
    """GB 11643: 17 digits weighted mod 11 give the check character."""
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == number[17].upper()


DEFAULT_RULES: tuple[Rule, ...] = (
    Rule("EMAIL", re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")),
    # Chinese resident ID: region, a real birth date, sequence, check character.
    Rule(
        "ID",
        re.compile(
            r"(?<![0-9A-Za-z])[1-9]\d{5}(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
            r"\d{3}[\dXx](?![0-9A-Za-z])"
        ),
    ),
    Rule("ID", re.compile(r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)")),  # US SSN
    Rule(
        "ID",
        re.compile(
            r"(?:病历号|住院号|门诊号|医保卡号|社保卡号|身份证号?|MRN"
            r"|medical record (?:number|no\.?))\s*[:：#]?\s*([A-Za-z0-9-]{4,})",
            re.IGNORECASE,
        ),
        group=1,
    ),
    # Mainland mobile numbers, optionally +86, with the usual spaces or dashes.
    Rule("PHONE", re.compile(r"(?<!\d)(?:\+?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}(?!\d)")),
    # Landlines: area code 0xx(x), 7–8 digits.
    Rule("PHONE", re.compile(r"(?<!\d)(?:\(0\d{2,3}\)|0\d{2,3}-)\s?\d{7,8}(?!\d)")),
    # North American numbers: (555) 123-4567, 555-123-4567, +1 555 123 4567.
    Rule(
        "PHONE",
        re.compile(r"(?<!\d)(?:\+1[ .-]?)?(?:\(\d{3}\)\s?|\d{3}[.-])\d{3}[.-]\d{4}(?!\d)"),
    ),
    # Chinese addresses: a province or city, then a street and usually a number.
    Rule(
        "ADDRESS",
        re.compile(
            rf"[{_CJK}]{{2,8}}(?:省|市|自治区)[{_CJK}]{{0,12}}?(?:市|区|县|镇|乡)?"
            rf"[{_CJK}\d]{{0,16}}?(?:路|街|大道|巷|胡同|村|小区)[{_CJK}\d]{{0,12}}?"
            r"(?:\d+\s*(?:号|栋|幢|单元|室|楼|弄)\s*)+"
        ),
    ),
    Rule(
        "ADDRESS",
        re.compile(
            r"\b\d{1,5}\s+(?:[A-Z][a-z]+\s+){1,3}"
            r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way)\b\.?"
            r"(?:,?\s*(?:Apt|Suite|Unit)\.?\s*\w+)?"
        ),
    ),
    # Names after a cue.
    Rule(
        "NAME",
        re.compile(
            rf"(?:我叫|我的名字是|名字叫|姓名\s*[:：]?\s*|患者\s*[:：]?\s*|病人\s*[:：]?\s*|家属\s*[:：]?\s*)"
            rf"([{_SURNAMES}][{_CJK}]{{1,2}}?)(?=[，,。.；;：:、\s]|先生|女士|$|[0-9])"
        ),
        group=1,
    ),
    Rule(
        "NAME",
        re.compile(
            r"(?:\b[Mm]y name is|\bI am|\bI'm|\bpatient|\b(?:Mr|Mrs|Ms|Miss|Dr)\.?)\s+"
            r"((?:[A-Z][a-z]+)(?:\s+[A-Z][a-z]+){0,2})"
        ),
        group=1,
    ),
)


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    label: str


class Redactor:
    def __init__(self, rules: Sequence[Rule] = DEFAULT_RULES):
        self.rules = tuple(rules)

    @classmethod
    def with_extra(cls, path: str | Path) -> Redactor:
        """The default rules plus a YAML list of {label, regex} from `path`."""
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or []
        if not isinstance(raw, list):
            raise ValueError(f"{path}: expected a list of {{label, regex}} entries")
        extra: list[Rule] = []
        for i, entry in enumerate(raw):
            try:
                extra.append(Rule(str(entry["label"]).upper(), re.compile(str(entry["regex"]))))
            except (KeyError, TypeError, re.error) as exc:
                raise ValueError(f"{path}: entry {i}: {exc}") from None
        return cls((*DEFAULT_RULES, *extra))

    def spans(self, text: str) -> list[Span]:
        """Non-overlapping PHI spans; where rules overlap, the earliest and longest wins."""
        found: list[Span] = []
        for rule in self.rules:
            for m in rule.regex.finditer(text):
                start, end = m.span(rule.group)
                if start == end:
                    continue
                if (
                    rule.label == "ID"
                    and rule.group == 0
                    and len(m.group()) == 18
                    and not _valid_cn_id(m.group())
                ):
                    continue  # 18 digits without a valid check character: not an ID
                found.append(Span(start, end, rule.label))
        found.sort(key=lambda s: (s.start, -(s.end - s.start)))
        kept: list[Span] = []
        for span in found:
            if kept and span.start < kept[-1].end:
                continue
            kept.append(span)
        return kept

    def redact(self, text: str) -> str:
        if not text:
            return text
        out: list[str] = []
        pos = 0
        for span in self.spans(text):
            out.append(text[pos : span.start])
            out.append(f"[{span.label}]")
            pos = span.end
        out.append(text[pos:])
        return "".join(out)

    def redact_all(self, texts: Iterable[str]) -> list[str]:
        return [self.redact(t) for t in texts]


@lru_cache(maxsize=1)
def default_redactor() -> Redactor:
    return Redactor()


def redact(text: str) -> str:
    return default_redactor().redact(text)
