from __future__ import annotations

from pydantic import BaseModel, Field

from services.gateway.cases.schemas import Handoff
from services.gateway.notices import Emergency, Prescription
from services.gateway.sessions.schemas import MessageOut
from services.gateway.text import StoredText


class MessageCreate(BaseModel):
    content: StoredText = Field(min_length=1, max_length=20_000)
    stream: bool = True
    max_new_tokens: int | None = Field(None, ge=1, le=4096)
    lang: str = Field("zh", pattern="^(zh|en)$", description="language of the notices")


class RegenerateRequest(BaseModel):
    stream: bool = True
    max_new_tokens: int | None = Field(None, ge=1, le=4096)
    lang: str = Field("zh", pattern="^(zh|en)$")


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int


class ChatAnswer(BaseModel):
    message: MessageOut
    user_message_id: int
    turns_used: int
    usage: Usage
    disclaimer: str = Field(description="answers come from a model and are not a diagnosis")
    emergency: Emergency | None = Field(
        None, description="present when the patient's words suggest an emergency"
    )
    handoff: Handoff | None = Field(
        None, description="present when this question brought in (or waits for) a clinician"
    )
    prescription: Prescription | None = Field(
        None, description="present when the answer names a prescription medicine with a dose"
    )
    ai_generated: bool = Field(
        default=True,
        description="the answer was written by a model (also the x-medchat-ai-generated: true"
        " header); a clinician's review shows on the stored message later",
    )


class HeldForClinician(BaseModel):
    """The answer to a question asked while a clinician has paused the model (202): it is
    stored for the clinician and no model answers it."""

    user_message_id: int
    handoff: Handoff
    emergency: Emergency | None


class Stopping(BaseModel):
    stopping: bool = Field(description="the stop was passed on; the stream ends soon after")
