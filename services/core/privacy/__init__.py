"""Privacy helpers shared by every service: PHI redaction."""

from .redact import Redactor, default_redactor, redact

__all__ = ["Redactor", "default_redactor", "redact"]
