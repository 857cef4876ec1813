"""Property-based requests generated from the gateway's own OpenAPI: never a 5xx."""

from __future__ import annotations

from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error


def test_no_server_errors(gateway_url: str) -> None:
    # A signed-in guest: its cookie, and the CSRF header its pages would send.
    guest = httpx.post(f"{gateway_url}/api/auth/guest")
    cookies, headers = dict(guest.cookies), {"X-CSRF-Token": guest.json()["csrf_token"]}
    schema = schemathesis.openapi.from_url(f"{gateway_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 15

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def check(case: Any) -> None:
            case.call_and_validate(
                base_url=gateway_url, cookies=cookies, headers=headers, checks=[not_a_server_error]
            )

        check()
