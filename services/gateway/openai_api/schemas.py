"""OpenAI chat-completions shapes: the request (the fields DISC-MedChat honours), the answer
whole or streamed, and the model list."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.gateway.error_schemas import ErrorObject
from services.gateway.notices import Emergency, Prescription
from services.gateway.openapi_sse import event_stream


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant"]
    content: str = Field(max_length=100_000)


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # unknown OpenAI fields are accepted, unused

    model: str
    messages: list[ChatMessage] = Field(min_length=1, max_length=1000)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1, le=8192)
    max_completion_tokens: int | None = Field(None, ge=1, le=8192)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    user: str | None = Field(None, max_length=256)
    n: int = Field(1, ge=1, le=1, description="only one choice is generated")

    @field_validator("stop")
    @classmethod
    def _at_most_four(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > 4:
            raise ValueError("at most 4 stop sequences")
        return value

    @property
    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)


# --- responses (what OpenAI documents, plus DISC-MedChat's notices) ----------------------


class ModelObject(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    serving: bool = Field(description="whether this model answers now (the admin's choice)")
    parent: str | None = Field(None, description="the base model of a fine-tune")
    kind: str | None = Field(None, description="what the registry holds: merged model or adapter")


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelObject]


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class _Answer(BaseModel):
    id: str
    created: int
    model: str = Field(description="the model that answered")
    ai_generated: bool = Field(
        description="written by a model (also the x-medchat-ai-generated: true header)"
    )
    prescription: Prescription | None = Field(
        None,
        description="the answer names a prescription medicine with a dose (in a stream: on the"
        " chunk that carries finish_reason)",
    )


_DISCLAIMER = "answers come from a model and are not a diagnosis"
_EMERGENCY = "present when the user's last words suggest an emergency"
_TURNS_USED = "earlier turns that fit in the prompt, this one included"


class AssistantMessage(BaseModel):
    role: Literal["assistant"]
    content: str


class Choice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: str


class ChatCompletion(_Answer):
    disclaimer: str = Field(description=_DISCLAIMER)
    emergency: Emergency | None = Field(description=_EMERGENCY)
    turns_used: int = Field(description=_TURNS_USED)
    object: Literal["chat.completion"]
    choices: list[Choice]
    usage: CompletionUsage


class ChunkDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int
    delta: ChunkDelta
    finish_reason: str | None


class ChatCompletionChunk(_Answer):
    """One piece of a streamed answer: the first has `delta.role`, the last a
    `finish_reason`; with `stream_options.include_usage` one more has no choices and `usage`.
    `disclaimer`, `emergency` and `turns_used` are on the first chunk and on those after the
    text (finish, usage), not on each token's chunk."""

    disclaimer: str | None = Field(None, description=_DISCLAIMER)
    emergency: Emergency | None = Field(None, description=_EMERGENCY)
    turns_used: int | None = Field(None, description=_TURNS_USED)
    object: Literal["chat.completion.chunk"]
    choices: list[ChunkChoice]
    usage: CompletionUsage | None = None


class ChatCompletionStreamError(BaseModel):
    """The engine failed mid-answer (the stream still ends with `[DONE]`)."""

    error: ErrorObject


class ChatCompletionEvent(BaseModel):
    """One server-sent event (`data:` only, no `event:`): a chunk, an error, or `[DONE]`."""

    data: ChatCompletionChunk | ChatCompletionStreamError | Literal["[DONE]"]


CHAT_COMPLETION_STREAM = event_stream(
    ChatCompletionEvent,
    description="`ChatCompletion` as JSON, or with `stream` server-sent events whose `data` is"
    " a `chat.completion.chunk` (or an error), ending with `data: [DONE]`.",
    components=(ChatCompletion, Emergency, ErrorObject),
)
