"""Patient-safety layer: the emergency notice, the prescription notice and the
not-a-diagnosis disclaimer.

All are attached by the gateway independently of what the model generates.
"""

from .disclaimer import DISCLAIMER_EN, DISCLAIMER_ZH, disclaimer
from .match import EmergencyNotice, detect_emergency, detect_emergency_in_messages, normalize
from .prescription import (
    DEFAULT_PRESCRIPTION_RULES_RESOURCE,
    PrescriptionNotice,
    PrescriptionRules,
    default_prescription_rules,
    detect_prescription,
    load_prescription_rules,
)
from .rules import (
    DEFAULT_RULES_RESOURCE,
    RulesError,
    RuleSet,
    Severity,
    default_rules,
    load_rules,
)

__all__ = [
    "DEFAULT_PRESCRIPTION_RULES_RESOURCE",
    "DEFAULT_RULES_RESOURCE",
    "DISCLAIMER_EN",
    "DISCLAIMER_ZH",
    "EmergencyNotice",
    "PrescriptionNotice",
    "PrescriptionRules",
    "RuleSet",
    "RulesError",
    "Severity",
    "default_prescription_rules",
    "default_rules",
    "detect_emergency",
    "detect_emergency_in_messages",
    "detect_prescription",
    "disclaimer",
    "load_prescription_rules",
    "load_rules",
    "normalize",
]
