"""Every table the gateway owns, imported once so Alembic sees the whole metadata."""

from services.core.db import Base
from services.gateway.access.models import AccessGrant
from services.gateway.audit.models import AuditEvent
from services.gateway.auth.models import ApiKey, LoginSession, User
from services.gateway.evals.models import EvalCase, EvalRun
from services.gateway.feedback.models import Feedback
from services.gateway.files.models import StoredFile
from services.gateway.finetune.models import FineTuneCheckpoint, FineTuneEvent, FineTuneJob
from services.gateway.serving.models import ServingChoice
from services.gateway.sessions.models import ChatSession, Message

metadata = Base.metadata

__all__ = [
    "AccessGrant",
    "ApiKey",
    "AuditEvent",
    "ChatSession",
    "EvalCase",
    "EvalRun",
    "Feedback",
    "FineTuneCheckpoint",
    "FineTuneEvent",
    "FineTuneJob",
    "LoginSession",
    "Message",
    "ServingChoice",
    "StoredFile",
    "User",
    "metadata",
]
