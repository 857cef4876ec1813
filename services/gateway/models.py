"""Every table the gateway owns, imported once so Alembic sees the whole metadata."""

from services.core.db import Base
from services.gateway.auth.models import ApiKey, LoginSession, User
from services.gateway.files.models import StoredFile
from services.gateway.finetune.models import FineTuneCheckpoint, FineTuneEvent, FineTuneJob
from services.gateway.sessions.models import ChatSession, Message

metadata = Base.metadata

__all__ = [
    "ApiKey",
    "ChatSession",
    "FineTuneCheckpoint",
    "FineTuneEvent",
    "FineTuneJob",
    "LoginSession",
    "Message",
    "StoredFile",
    "User",
    "metadata",
]
