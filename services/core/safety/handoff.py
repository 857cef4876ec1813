"""A patient asking for a person ("转人工", "talk to a doctor"): a rule, not the model, so the
request is heard whatever the model makes of it."""

from __future__ import annotations

import re

from .match import normalize

# Matched against the normal form (NFKC, lower case, no spaces between CJK characters).
_ASKS = re.compile(
    r"转人工|人工客服|人工服务|人工医生|真人医生|找(?:个|一位)?(?:真人|人工)|(?:找|叫|要|换)(?:个|一位)?医生(?:来)?(?:回答|回复|和我说|跟我说|聊)"
    r"|(?:talk|speak|chat)\s+(?:to|with)\s+(?:a\s+)?(?:real\s+|human\s+|actual\s+)?(?:doctor|human|person|clinician|nurse)"
    r"|(?:real|human)\s+(?:doctor|person|clinician)|\bagent\s+please\b"
)


def asks_for_human(text: str) -> bool:
    return _ASKS.search(normalize(text)) is not None
