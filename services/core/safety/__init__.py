"""Patient-safety layer: the emergency notice, the prescription notice and the
not-a-diagnosis disclaimer.

Both are attached by the gateway independently of what the model generates.
"""

from .disclaimer import DISCLAIMER_EN, DISCLAIMER_ZH, disclaimer
from .match import EmergencyNotice, detect_emergency, detect_emergency_in_messages, normalize
from .prescription import PrescriptionNotice, detect_prescription
from .rules import (
    DEFAULT_RULES_RESOURCE,
    RulesError,
    RuleSet,
    Severity,
    default_rules,
    load_rules,
)

__all__ = [
    "DEFAULT_RULES_RESOURCE",
    "DISCLAIMER_EN",
    "DISCLAIMER_ZH",
    "EmergencyNotice",
    "PrescriptionNotice",
    "RuleSet",
    "RulesError",
    "Severity",
    "default_rules",
    "detect_emergency",
    "detect_emergency_in_messages",
    "detect_prescription",
    "disclaimer",
    "load_rules",
    "normalize",
]
