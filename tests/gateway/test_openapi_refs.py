"""The OpenAPI the frontend's client is generated from refers only to schemas it defines
(the streamed events are written inline by `openapi_sse.event_stream`)."""

from __future__ import annotations

import json
import re

from services.gateway.app import create_app
from services.gateway.config import GatewaySettings


def test_every_schema_reference_resolves() -> None:
    schema = create_app(GatewaySettings()).openapi()
    names = set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(schema)))
    assert names <= set(schema["components"]["schemas"])
    answers = schema["paths"]["/api/sessions/{session_id}/messages"]["post"]["responses"]
    assert {"application/json", "text/event-stream"} <= set(answers["200"]["content"])
