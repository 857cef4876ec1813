"""Rate limiting against a real Redis (db 15, keys under a per-test prefix)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
import pytest_asyncio
from fastapi import Depends, FastAPI
from fastapi.responses import StreamingResponse
from redis.asyncio import Redis

from services.gateway.auth.dependencies import Principal, current_principal
from services.gateway.config import GatewaySettings
from services.gateway.errors import install_error_handlers
from services.gateway.limiter import Decision, RateLimiter, headers
from services.gateway.observability import Metrics, RequestContext
from services.gateway.ratelimit import limit_key, rate_limited, response_headers
from tests.support.servers import PrivateRedis

REDIS_URL = "redis://127.0.0.1:6379/15"
LOGGER = "services.gateway.limiter"


@pytest_asyncio.fixture
async def limiter() -> AsyncIterator[RateLimiter]:
    client = Redis.from_url(REDIS_URL)
    prefix = f"medchat:rl:test:{uuid.uuid4().hex}"
    try:
        # A generous timeout: these tests check the algorithm, and a loaded CI machine must
        # not turn a slow Redis answer into the fail-open path.
        yield RateLimiter(client, prefix=prefix, timeout_s=10.0)
    finally:
        # Only this test's keys: db 15 may be shared with other tests.
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def keys_of(limiter: RateLimiter) -> list[bytes]:
    client = Redis.from_url(REDIS_URL)
    try:
        return [k async for k in client.scan_iter(match=f"{limiter.prefix}:*")]
    finally:
        await client.aclose()


def patient() -> Principal:
    return Principal(uuid.uuid4(), "patient", "cookie")


def integrator(user_id: uuid.UUID | None = None) -> Principal:
    return Principal(user_id or uuid.uuid4(), "integrator", "api_key", uuid.uuid4())


# The algorithm


@pytest.mark.asyncio
async def test_allows_the_limit_then_denies(limiter: RateLimiter) -> None:
    decisions = [await limiter.check("user:a", 5, 60) for _ in range(5)]
    assert all(d.allowed for d in decisions)
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0]
    assert all(d.limit == 5 for d in decisions)
    # One request per 60/5 = 12 s: that is when the next slot frees.
    assert all(1 <= d.reset_s <= 12 for d in decisions)

    denied = await limiter.check("user:a", 5, 60)
    assert denied == Decision(False, 5, 0, denied.reset_s)
    assert 1 <= denied.reset_s <= 12
    again = await limiter.check("user:a", 5, 60)
    assert not again.allowed and again.reset_s <= denied.reset_s  # denials cost nothing


@pytest.mark.asyncio
async def test_elapsed_time_frees_slots(limiter: RateLimiter) -> None:
    assert (await limiter.check("user:a", 2, 1)).allowed
    assert (await limiter.check("user:a", 2, 1)).allowed
    denied = await limiter.check("user:a", 2, 1)
    assert not denied.allowed and denied.reset_s == 1

    deadline = time.monotonic() + 5
    while not (decision := await limiter.check("user:a", 2, 1)).allowed:
        assert time.monotonic() < deadline, "no slot freed within 5 s of a 1 s window"
        await asyncio.sleep(0.05)
    assert decision.remaining == 0  # half a window later: one slot back, not the whole burst

    await asyncio.sleep(1.2)  # a full window idle refills the whole burst
    refilled = [await limiter.check("user:a", 2, 1) for _ in range(3)]
    assert [d.allowed for d in refilled] == [True, True, False]


@pytest.mark.asyncio
async def test_one_key_per_bucket_that_expires(limiter: RateLimiter) -> None:
    for _ in range(20):
        await limiter.check("user:a", 100, 60)
    keys = await keys_of(limiter)
    assert keys == [f"{limiter.prefix}:user:a".encode()]
    client = Redis.from_url(REDIS_URL)
    try:
        ttl_ms = await client.pttl(keys[0])
    finally:
        await client.aclose()
    # 20 of 100 used: the key lives until they have all drained (20 x 0.6 s), not forever.
    assert 0 < ttl_ms <= 12_000


@pytest.mark.asyncio
async def test_buckets_are_separate(limiter: RateLimiter) -> None:
    assert (await limiter.check("user:a", 1, 60)).allowed
    assert not (await limiter.check("user:a", 1, 60)).allowed
    assert (await limiter.check("user:b", 1, 60)).allowed
    assert (await limiter.check("key:a", 1, 60)).allowed


def test_limit_key_per_api_key_or_per_user() -> None:
    browser = patient()
    assert limit_key(browser) == (f"user:{browser.user_id}", "user")
    first, second = integrator(), integrator()
    assert limit_key(first) == (f"key:{first.api_key_id}", "key")
    # Two keys of the same user draw from separate buckets.
    same_user = integrator(first.user_id)
    assert limit_key(same_user)[0] != limit_key(first)[0] != limit_key(second)[0]


@pytest.mark.asyncio
async def test_concurrent_checks_are_atomic(limiter: RateLimiter) -> None:
    decisions = await asyncio.gather(*(limiter.check("user:a", 10, 60) for _ in range(50)))
    allowed = [d for d in decisions if d.allowed]
    assert len(allowed) == 10
    assert sorted(d.remaining for d in allowed) == list(range(10))


@pytest.mark.asyncio
async def test_rejects_nonsense_limits(limiter: RateLimiter) -> None:
    with pytest.raises(ValueError):
        await limiter.check("user:a", 0, 60)
    with pytest.raises(ValueError):
        await limiter.check("user:a", 10, 0)


def test_headers() -> None:
    assert headers(Decision(True, 20, 7, 3)) == {
        "X-RateLimit-Limit": "20",
        "X-RateLimit-Remaining": "7",
        "X-RateLimit-Reset": "3",
    }
    assert headers(Decision(False, 20, 0, 4))["Retry-After"] == "4"


# Redis down


@pytest.mark.asyncio
async def test_fails_open_when_redis_is_unreachable(caplog: pytest.LogCaptureFixture) -> None:
    client = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    # probe_every_s=0: every check tries Redis, and still only the first one logs.
    limiter = RateLimiter(client, timeout_s=0.3, probe_every_s=0.0)
    user_id = uuid.uuid4()
    try:
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            decisions = [await limiter.check(f"user:{user_id}", 1, 60) for _ in range(3)]
    finally:
        await client.aclose()
    assert decisions == [Decision(True, 1, 1, 0)] * 3
    warnings = [r for r in caplog.records if r.name == LOGGER]
    assert len(warnings) == 1
    assert str(user_id) not in warnings[0].getMessage()  # no user ids in logs


@pytest.mark.asyncio
async def test_recovers_when_redis_is_back(
    own_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    port = own_redis.port
    client = Redis(port=port, socket_connect_timeout=0.2, socket_timeout=0.5)
    limiter = RateLimiter(client, timeout_s=0.5, probe_every_s=0.1)
    try:
        assert [(await limiter.check("user:a", 2, 60)).allowed for _ in range(3)] == [
            True,
            True,
            False,
        ]

        own_redis.stop()
        with caplog.at_level(logging.INFO, logger=LOGGER):
            down = [await limiter.check("user:a", 2, 60) for _ in range(3)]
            assert down == [Decision(True, 2, 2, 0)] * 3  # fail open: chat keeps working

            own_redis.start()
            deadline = time.monotonic() + 10
            while (decision := await limiter.check("user:a", 2, 60)).remaining == 2:
                assert time.monotonic() < deadline, "limiting did not resume within 10 s"
                await asyncio.sleep(0.05)
        assert decision == Decision(True, 2, 1, decision.reset_s)
        assert (await limiter.check("user:a", 2, 60)).allowed
        assert not (await limiter.check("user:a", 2, 60)).allowed
        messages = [r.getMessage() for r in caplog.records if r.name == LOGGER]
        assert len(messages) == 2  # one "unavailable", one "back": not one per request
        assert "unavailable" in messages[0] and "back" in messages[1]
    finally:
        await client.aclose()


# The dependency and the headers


def limits(principal: Principal, _: GatewaySettings) -> tuple[int, int]:
    return (3, 60) if principal.via == "api_key" else (2, 60)


# Module level: with postponed annotations FastAPI resolves route annotations in globals.
ChatPrincipal = Annotated[Principal, Depends(rate_limited(limits))]


def make_app(limiter: RateLimiter, who: list[Principal]) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(RequestContext, metrics=Metrics(), add_headers=response_headers)
    app.state.ratelimiter = limiter
    app.state.settings = GatewaySettings()
    app.dependency_overrides[current_principal] = lambda: who[0]

    @app.get("/chat")
    async def chat(principal: ChatPrincipal) -> dict[str, str]:
        return {"user": str(principal.user_id)}

    @app.get("/stream", dependencies=[Depends(rate_limited(limits, scope="stream"))])
    async def stream() -> StreamingResponse:
        async def parts() -> AsyncIterator[bytes]:
            for part in (b"data: a\n\n", b"data: b\n\n"):
                yield part

        return StreamingResponse(parts(), media_type="text/event-stream")

    return app


@pytest.mark.asyncio
async def test_dependency_sets_headers_and_answers_429(limiter: RateLimiter) -> None:
    browser = patient()
    who = [browser]
    app = make_app(limiter, who)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://test"
    ) as client:
        ok = [await client.get("/chat") for _ in range(2)]
        assert [r.status_code for r in ok] == [200, 200]
        assert ok[0].json() == {"user": str(browser.user_id)}
        assert [r.headers["X-RateLimit-Remaining"] for r in ok] == ["1", "0"]
        assert all(r.headers["X-RateLimit-Limit"] == "2" for r in ok)
        assert all(1 <= int(r.headers["X-RateLimit-Reset"]) <= 30 for r in ok)
        assert "Retry-After" not in ok[0].headers

        limited = await client.get("/chat")
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["Retry-After"]) <= 30
        assert limited.headers["X-RateLimit-Remaining"] == "0"
        assert limited.headers["X-RateLimit-Limit"] == "2"
        body = limited.json()
        assert set(body) == {"error"}
        assert body["error"]["code"] == body["error"]["type"] == "rate_limited"
        assert body["error"]["param"] is None
        assert "retry in" in body["error"]["message"]

        # An API key of the same user has its own bucket, with its own limit.
        who[0] = integrator(browser.user_id)
        keyed = await client.get("/chat")
        assert keyed.status_code == 200
        assert keyed.headers["X-RateLimit-Limit"] == "3"
        assert keyed.headers["X-RateLimit-Remaining"] == "2"


@pytest.mark.asyncio
async def test_streaming_responses_carry_the_headers(limiter: RateLimiter) -> None:
    app = make_app(limiter, [patient()])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://test"
    ) as client:
        first = await client.get("/stream")
        assert first.status_code == 200
        assert first.text == "data: a\n\ndata: b\n\n"
        assert first.headers["X-RateLimit-Remaining"] == "1"
        assert first.headers["content-type"].startswith("text/event-stream")
        # The stream scope is its own bucket: /chat is still untouched.
        chat = await client.get("/chat")
        assert chat.headers["X-RateLimit-Remaining"] == "1"
        await client.get("/stream")
        assert (await client.get("/stream")).status_code == 429


# The local lease (buckets of a high rate)


def test_lease_size_only_for_high_rates(limiter: RateLimiter) -> None:
    assert limiter.lease_size(20, 60) == 1  # the patients' default: every request asks Redis
    assert limiter.lease_size(100, 60) == 1  # under 2 a second: no lease
    assert limiter.lease_size(600, 60) == 10  # the integrators' default: one second's worth
    assert limiter.lease_size(64_000, 60) == 1066  # the rate bounds it
    assert limiter.lease_size(640, 1) == 20  # 1/32 of the burst bounds it


@pytest_asyncio.fixture
async def replicas(limiter: RateLimiter) -> AsyncIterator[tuple[RateLimiter, RateLimiter]]:
    """Two replicas' limiters on one bucket store, with leases of one minute's worth (so
    that the slow refill of these buckets, about one cell a second, is what they lease)."""
    client = Redis.from_url(REDIS_URL)
    try:
        yield tuple(  # type: ignore[misc]
            RateLimiter(client, prefix=limiter.prefix, timeout_s=10.0, lease_s=60.0)
            for _ in range(2)
        )
    finally:
        await client.aclose()


def count_calls(limiter: RateLimiter) -> list[int]:
    calls = [0]
    script = limiter._script

    async def counting(**kw: Any) -> Any:
        calls[0] += 1
        return await script(**kw)

    limiter._script = counting  # type: ignore[assignment]
    return calls


@pytest.mark.asyncio
async def test_a_lease_costs_one_round_trip_and_never_admits_more_than_the_limit(
    replicas: tuple[RateLimiter, RateLimiter],
) -> None:
    one, two = replicas
    assert one.lease_size(640, 600) == 20  # 1/32 of the burst
    calls = count_calls(one)
    decisions = await asyncio.gather(
        *(one.check("key:a", 640, 600) for _ in range(100)),
        *(two.check("key:a", 640, 600) for _ in range(1000)),
    )
    assert calls[0] == 5  # 100 requests in 5 leases of 20: one Redis call per 20 requests
    allowed = sum(d.allowed for d in decisions)
    # Never more than the burst across replicas (a cell or two may refill during the test);
    # at most one unused lease per replica short of it.
    assert 640 - 2 * 20 <= allowed <= 642
    assert sum(d.allowed for d in decisions[:100]) == 100


@pytest.mark.asyncio
async def test_a_leased_bucket_counts_down_and_refuses(
    replicas: tuple[RateLimiter, RateLimiter],
) -> None:
    one, _ = replicas
    assert one.lease_size(64, 600) == 2
    first = [await one.check("key:b", 64, 600) for _ in range(3)]
    assert [(d.allowed, d.remaining) for d in first] == [(True, 63), (True, 62), (True, 61)]
    calls = count_calls(one)
    decisions = [await one.check("key:b", 64, 600) for _ in range(70)]
    allowed = [d for d in decisions if d.allowed]
    assert 61 <= len(allowed) <= 62  # 61 left; one more if a cell refilled meanwhile
    # Leases of 2 (the last may be 1), then one call per refusal.
    assert calls[0] <= (len(allowed) + 1) // 2 + 1 + (70 - len(allowed))
    denied = decisions[-1]
    assert not denied.allowed and denied.remaining == 0 and denied.reset_s >= 1
