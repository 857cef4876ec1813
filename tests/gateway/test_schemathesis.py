"""Property-based requests generated from the gateway's own OpenAPI: never a 5xx.

Every operation is run as three callers (a guest browser, a caller without credentials, a
signed-up patient's browser) and under two seeds: a fixed one, so every run covers a known
set of requests, and a fresh random one per run, printed and named in any failure so that
the run can be repeated: MEDCHAT_SCHEMATHESIS_SEED=<seed> pytest tests/gateway/test_schemathesis.py
(the variable also pins the "random" seed)."""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.schemas import APIOperation

FIXED_SEED = 20_240_611
SEED_VARIABLE = "MEDCHAT_SCHEMATHESIS_SEED"
# Requests per operation and caller: about 50 operations, six runs of them in all, take a
# minute and a half on two busy cores (5 did not find the offset overflow that 20 found).
MAX_EXAMPLES = 20
# Run last: they end the caller's login, and every operation after them would only see 401.
ENDS_LOGIN = ("POST /api/auth/logout", "DELETE /api/auth/me")

Credentials = tuple[dict[str, str], dict[str, str]]  # cookies, headers
Operation = APIOperation[Any, Any, Any, Any]


@pytest.fixture(scope="module")
def operations(gateway_url: str) -> list[Operation]:
    schema = schemathesis.openapi.from_url(f"{gateway_url}/openapi.json")
    found = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(found) >= 15
    return sorted(found, key=lambda op: op.label in ENDS_LOGIN)  # stable: otherwise as listed


def _logged_in(r: httpx.Response) -> Credentials:
    """A browser's login: its cookies, and the CSRF header its pages send with writes."""
    assert r.status_code == 201, r.text
    return dict(r.cookies), {"X-CSRF-Token": r.json()["csrf_token"]}


def credentials(gateway_url: str, actor: str) -> Credentials:
    if actor == "guest":
        return _logged_in(httpx.post(f"{gateway_url}/api/auth/guest", timeout=30))
    if actor == "signed-up":
        email = f"schemathesis-{uuid.uuid4().hex[:12]}@example.com"
        body = {"email": email, "password": f"pw-{uuid.uuid4().hex}"}
        return _logged_in(httpx.post(f"{gateway_url}/api/auth/signup", json=body, timeout=30))
    assert actor == "anonymous"  # a patient who never signed in: no cookie, no key, no CSRF
    return {}, {}


def run_seed(which: str) -> int:
    if which == "fixed":
        return FIXED_SEED
    pinned = os.environ.get(SEED_VARIABLE)
    return int(pinned) if pinned else random.randrange(2**32)


@pytest.mark.parametrize("which", ["fixed", "random"], ids=["fixed-seed", "random-seed"])
@pytest.mark.parametrize("actor", ["guest", "anonymous", "signed-up"])
def test_no_server_errors(
    gateway_url: str,
    operations: list[Operation],
    actor: str,
    which: str,
    record_property: Callable[[str, object], None],
) -> None:
    run = run_seed(which)
    # Shown with the test's output (and kept in a JUnit report), to repeat the run.
    print(f"schemathesis: {actor}, seed {run} (repeat with {SEED_VARIABLE}={run})")  # noqa: T201
    record_property("schemathesis_seed", run)
    cookies, headers = credentials(gateway_url, actor)
    failures: list[str] = []

    for operation in operations:

        @seed(run)
        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def check(case: Any) -> None:
            case.call_and_validate(
                base_url=gateway_url, cookies=cookies, headers=headers, checks=[not_a_server_error]
            )

        try:
            check()
        # FailureGroup (what schemathesis raises) is a BaseExceptionGroup, not an Exception.
        except (Exception, FailureGroup) as exc:  # every operation runs; all are reported
            failures.append(f"{operation.label}: {type(exc).__name__}: {exc}")

    assert not failures, (
        f"{len(failures)} operation(s) answered a server error as {actor} under seed {run}"
        f" (repeat with {SEED_VARIABLE}={run}):\n\n" + "\n\n".join(failures)
    )
