"""The one error body, as models: documented on routes with `error_responses(...)`.

`errors.error_body` builds the body; these models only describe it (the handlers stay as fast
as a dict), and a test checks that bodies the gateway sends validate against them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class Problem(BaseModel):
    """One problem of an uploaded file, by line (`services.core.chatformat.validate`)."""

    line: int
    code: str
    message: str
    param: str | None = None
    severity: Literal["error", "warning"]


class ErrorObject(BaseModel):
    code: str = Field(description="stable, machine-readable")
    message: str = Field(description="for people; in the request's language where one is known")
    param: str | None = Field(None, description="the request field at fault, when one is")
    type: str = Field(description="the code again, where OpenAI clients look for it")
    details: list[Problem] | None = Field(
        None, description="every problem of an uploaded file, when there are several"
    )


class ErrorBody(BaseModel):
    error: ErrorObject


_WHY = {
    400: "Bad request",
    401: "Not signed in",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict",
    413: "Too large",
    422: "Invalid request",
    429: "Rate limited (see Retry-After)",
    502: "The engine failed",
    503: "The engine is unavailable or overloaded (see Retry-After)",
    504: "The engine timed out",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for the error statuses a route can answer with."""
    return {s: {"model": ErrorBody, "description": _WHY.get(s, "Error")} for s in statuses}
