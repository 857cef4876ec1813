"""The platform's tables: a schema shared by the gateway, the worker, the evaluation runner and
Alembic. Importing any one table module runs this package first, so every table is in the
metadata and foreign keys between them always resolve."""

from services.core.db import Base

from .access import AccessGrant
from .audit import AuditEvent
from .auth import ApiKey, LoginSession, User
from .cases import Case, MessageReview, Webhook, WebhookDelivery
from .evals import EvalCase, EvalRun
from .feedback import Feedback
from .files import StoredFile
from .finetune import FineTuneCheckpoint, FineTuneEvent, FineTuneJob
from .serving import ServingChoice
from .sessions import ChatSession, Message

metadata = Base.metadata

__all__ = [
    "AccessGrant",
    "ApiKey",
    "AuditEvent",
    "Case",
    "ChatSession",
    "EvalCase",
    "EvalRun",
    "Feedback",
    "FineTuneCheckpoint",
    "FineTuneEvent",
    "FineTuneJob",
    "LoginSession",
    "Message",
    "MessageReview",
    "ServingChoice",
    "StoredFile",
    "User",
    "Webhook",
    "WebhookDelivery",
    "metadata",
]
