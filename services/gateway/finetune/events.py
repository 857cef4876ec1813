"""The live event stream of a fine-tuning job (`GET .../events?stream=true`) as models, for
the OpenAPI: `event: event` with each job event, oldest first, then one `event: end` when
the job is over."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from services.gateway.openapi_sse import event_stream

from .schemas import EventList, EventObject


class JobEnd(BaseModel):
    status: str = Field(description="the job's final status (`deleted` if it is gone)")


class JobEventEvent(BaseModel):
    event: Literal["event"]
    data: EventObject


class JobEndEvent(BaseModel):
    event: Literal["end"]
    data: JobEnd


JobStreamEvent = Annotated[JobEventEvent | JobEndEvent, Field(discriminator="event")]

JOB_EVENTS_STREAM = event_stream(
    JobStreamEvent,
    description="A page of events (`EventList`, newest first), or with `stream=true`"
    " server-sent events: every event from the oldest (or after `after`), live until the job"
    " ends.",
    components=[EventList, EventObject],
)


def sse(event: JobEventEvent | JobEndEvent) -> bytes:
    return f"event: {event.event}\ndata: {event.data.model_dump_json()}\n\n".encode()
