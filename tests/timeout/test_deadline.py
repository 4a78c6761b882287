"""The deadline of a @timeout reaches the hazina policies it encloses.

Retry and rate limiter waits that would end past it give up at once (as for a too-long
``retry_after``), and a breaker under a timeout counts the cancellation its deadline
caused as a failure. The policies run on the fake clock; the deadline is real time.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import pytest

import hazina

if TYPE_CHECKING:
    from conftest import Flavor


def test_a_retry_wait_past_the_deadline_is_not_started(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """Under a 1 s timeout, a retry that would wait 10 s gives up at once with its note."""
    calls = 0

    def fail() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError("down")

    retried = hazina.retry("r", registry=registry, attempts=3, initial=10, jitter=None)(
        flavor.define(fail)
    )
    fn = hazina.timeout("t", registry=registry, seconds=1)(retried)
    started = time.monotonic()
    with pytest.raises(ConnectionError) as raised:
        flavor.call(fn)
    assert time.monotonic() - started < 0.5
    assert calls == 1
    assert any("gave up after 1 attempt" in note for note in raised.value.__notes__)
    assert registry.retry("r").stats().give_ups == 1
    assert registry.timeout("t").stats().timeouts == 0


def test_a_retry_wait_within_the_deadline_still_happens(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """A wait that ends before the deadline is made as usual (here on the fake clock)."""
    outcomes = iter([ConnectionError("down"), "ok"])

    def flaky() -> Any:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    retried = hazina.retry("r", registry=registry, initial=0.5, jitter=None)(flavor.define(flaky))
    fn = hazina.timeout("t", registry=registry, seconds=5)(retried)
    assert flavor.call(fn) == "ok"


def test_a_limiter_wait_past_the_deadline_is_refused_at_once(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """A limiter with ``wait=True`` refuses a wait that would cross the deadline, at once."""
    limited = hazina.rate_limited("l", registry=registry, rate=1, per=10, wait=True)(
        flavor.define(lambda: "ok")
    )
    fn = hazina.timeout("t", registry=registry, seconds=1)(limited)
    assert flavor.call(fn) == "ok"
    with pytest.raises(hazina.RateLimitExceeded):
        flavor.call(fn)
    stats = registry.rate_limiter("l").stats()
    assert (stats.allowed, stats.rejected, stats.waited) == (1, 1, 0)
    # Outside any deadline the same wait is made (instantly, on the fake clock).
    assert flavor.call(limited) == "ok"
    assert registry.rate_limiter("l").stats().waited == 1


@pytest.mark.asyncio
async def test_a_breaker_under_a_timeout_counts_the_deadline_as_a_failure() -> None:
    """A call cut off by the enclosing hazina deadline is a breaker failure, not "ignored"."""
    registry = hazina.Registry()
    breaker = registry.circuit_breaker("b", failure_threshold=2)
    guarded = hazina.circuit_breaker("b", registry=registry)(asyncio.sleep)
    fn = hazina.timeout("t", registry=registry, seconds=0.02)(guarded)
    for _ in range(2):
        with pytest.raises(hazina.TimeoutExceeded):
            await fn(10)
    stats = breaker.stats()
    assert (stats.failures, stats.ignored) == (2, 0)
    assert breaker.state is hazina.CircuitState.OPEN


@pytest.mark.asyncio
async def test_a_breaker_ignores_a_cancellation_that_is_no_deadline() -> None:
    """Cancelling the caller from outside still counts as neither success nor failure."""
    registry = hazina.Registry()
    guarded = hazina.circuit_breaker("b", registry=registry)(asyncio.sleep)
    fn = hazina.timeout("t", registry=registry, seconds=10)(guarded)
    task = asyncio.create_task(fn(10))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    stats = registry.circuit_breaker("b").stats()
    assert (stats.failures, stats.ignored) == (0, 1)


def test_remaining_in_a_worker_counts_from_the_call() -> None:
    """A sync call's deadline starts when it is called, and its worker sees what is left."""
    registry = hazina.Registry()
    fn = hazina.timeout("t", registry=registry, seconds=0.5)(hazina.remaining)
    left = fn()
    assert left is not None
    assert 0.3 < left <= 0.5


def test_a_redis_limiter_wait_past_the_deadline_is_refused(flavor: Flavor, redis_url: str) -> None:
    """On Redis too, a limiter wait that would cross the enclosing deadline is refused."""
    from hazina.redis import RedisBackend

    registry = hazina.Registry(backend=RedisBackend.from_url(redis_url))
    limited = hazina.rate_limited("l", registry=registry, rate=1, per=60, wait=True)(
        flavor.define(lambda: "ok")
    )
    fn = hazina.timeout("t", registry=registry, seconds=1)(limited)
    assert flavor.call(fn) == "ok"
    started = time.monotonic()
    with pytest.raises(hazina.RateLimitExceeded):
        flavor.call(fn)
    assert time.monotonic() - started < 0.9
    stats = registry.rate_limiter("l").stats()
    assert (stats.allowed, stats.rejected, stats.waited) == (1, 1, 0)


def test_a_redis_breaker_under_a_timeout_counts_the_deadline_as_a_failure(redis_url: str) -> None:
    """On Redis too, a call cut off by the enclosing deadline is a breaker failure."""
    import redis.asyncio

    from hazina.redis import RedisBackend

    client = redis.asyncio.Redis.from_url(redis_url)
    registry = hazina.Registry(backend=RedisBackend(async_client=client))
    guarded = hazina.circuit_breaker("b", registry=registry, failure_threshold=2)(asyncio.sleep)
    fn = hazina.timeout("t", registry=registry, seconds=0.02)(guarded)

    async def scenario() -> None:
        for _ in range(2):
            with pytest.raises(hazina.TimeoutExceeded):
                await fn(10)
        with pytest.raises(hazina.CircuitOpenError):
            await fn(0)
        await client.aclose()

    asyncio.run(scenario())
    stats = registry.circuit_breaker("b").stats()
    assert (stats.failures, stats.ignored, stats.rejections) == (2, 0, 1)
