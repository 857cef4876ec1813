"""The server-sent events of a streamed answer (`POST .../messages` and `.../regenerate`
with `stream`), as models: the OpenAPI documents them and the frontend's types come from it.

On the wire each event is `event: <event>` then `data: <data as JSON>`, in this order: one
`meta`, any number of `delta`, then `done` or `error`. A stream that ends without `done` or
`error` was cut (a stop that did not finish, a dropped connection): the gateway keeps what
arrived as a stopped answer.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from services.gateway.cases.schemas import Handoff
from services.gateway.notices import Emergency
from services.gateway.openapi_sse import event_stream
from services.gateway.sessions.schemas import MessageOut

from .schemas import ChatAnswer


class ChatMeta(BaseModel):
    """Before the first token: where the turn was stored and the emergency notice, if any
    (shown at once, before the answer)."""

    session_id: str
    user_message_id: int
    turns_used: int = Field(description="earlier turns that fit in the prompt, this one included")
    prompt_tokens: int
    emergency: Emergency | None
    handoff: Handoff | None = Field(
        None, description="a clinician is being brought in (or has paused the model)"
    )


class ChatDelta(BaseModel):
    text: str = Field(description="the next piece of the answer")


class StreamErrorObject(BaseModel):
    code: str
    message: str


class ChatStreamError(BaseModel):
    """The engine failed mid-answer: the error and the answer as stored (status `failed`,
    its partial text kept)."""

    error: StreamErrorObject
    message: MessageOut


class MetaEvent(BaseModel):
    event: Literal["meta"]
    data: ChatMeta


class DeltaEvent(BaseModel):
    event: Literal["delta"]
    data: ChatDelta


class DoneEvent(BaseModel):
    """The answer as stored (status `complete`, or `stopped` after a stop) with its notices:
    the same body as the JSON answer."""

    event: Literal["done"]
    data: ChatAnswer


class ErrorEvent(BaseModel):
    event: Literal["error"]
    data: ChatStreamError


class HeldEvent(BaseModel):
    """Instead of an answer while a clinician has paused the model: the question is stored
    for the clinician; the stream ends after this event."""

    event: Literal["held"]
    data: Handoff


ChatStreamEvent = Annotated[
    MetaEvent | DeltaEvent | DoneEvent | ErrorEvent | HeldEvent, Field(discriminator="event")
]

CHAT_STREAM = event_stream(
    ChatStreamEvent,
    description="The answer: JSON (`ChatAnswer`) without `stream`, otherwise server-sent"
    " events: `meta`, `delta`…, then `done` or `error` (or `meta`, `held` while a clinician"
    " has paused the model); each event's `data` is JSON.",
    components=(ChatAnswer, MessageOut, Emergency, Handoff),
)
