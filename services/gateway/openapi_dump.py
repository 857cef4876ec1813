"""Print the gateway's OpenAPI schema (the frontend's typed client is generated from it):
`python -m services.gateway.openapi_dump > frontend/openapi.json`."""

from __future__ import annotations

import json
import sys

from .app import create_app
from .config import GatewaySettings


def dump() -> str:
    # Default settings: the schema does not depend on them, and nothing is connected to.
    schema = create_app(GatewaySettings()).openapi()
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(dump())
