"""docker-compose.yml is checked against the official Compose specification schema."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import orjson
import yaml

from ..support.tokenizers import SHARED

ROOT = Path(__file__).resolve().parents[2]


def test_compose_file_follows_the_specification() -> None:
    schema = orjson.loads((SHARED / "reference" / "compose-spec.json").read_bytes())
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    # The spec names draft-07 by a URL without "#", which jsonschema does not recognise.
    jsonschema.Draft7Validator(schema).validate(compose)
    for name, service in compose["services"].items():
        assert "healthcheck" in service, f"{name} needs a healthcheck for depends_on"
        assert ":" in service["image"] and not service["image"].endswith(":latest")
