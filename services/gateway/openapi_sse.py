"""Server-sent events in the OpenAPI: a typed union of events on a route's 200 response.

A route that answers JSON or SSE by a request flag has one `response_model` (the JSON) and
FastAPI has no second slot for the stream, so the stream's schema is declared with
`responses={200: event_stream(Union, ...)}`. FastAPI only adds to `components` the models its
routes declare, so the events' own models are written inline; models the same route already
declares (`response_model`, its error bodies) stay `$ref`s to their components.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, TypeAdapter

_REF = "#/components/schemas/"


def event_stream(
    events: Any, *, description: str, components: Iterable[type[BaseModel]] = ()
) -> dict[str, Any]:
    """A `responses[200]` entry: `text/event-stream` whose schema is one event (`events`, a
    discriminated union). `components` are models the route registers already: referenced,
    not inlined (their nested models are registered with them)."""
    schema = TypeAdapter(events).json_schema(mode="serialization", ref_template=_REF + "{model}")
    defs: dict[str, Any] = schema.pop("$defs", {})
    keep = {m.__name__ for m in components}

    def resolve(node: Any) -> Any:
        if isinstance(node, list):
            return [resolve(x) for x in node]
        if not isinstance(node, dict):
            return node
        out = {k: resolve(v) for k, v in node.items() if k != "$ref"}
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.removeprefix(_REF)
            if name in keep or name not in defs:
                out["$ref"] = ref
            else:
                out = {**resolve(defs[name]), **out}
        discriminator = out.get("discriminator")
        if isinstance(discriminator, dict):
            # The mapping points at definitions that are now inline; each variant's
            # discriminating property is a `const`, which is all a client needs.
            out["discriminator"] = {"propertyName": discriminator["propertyName"]}
        return out

    return {
        "description": description,
        "content": {"text/event-stream": {"schema": resolve(schema)}},
    }
