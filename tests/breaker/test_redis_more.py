"""Breaker, more, on Redis: the grown open time is shared, dry run and failure_rate=None work.

Nodes (registries on one Redis and one fake clock) stand in for processes, as in
``test_redis.py``, whose fixtures these tests reuse.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

import hazina
from breaker import test_redis
from breaker.test_redis import Node
from hazina import CallRejected, CircuitState, ConfigurationError
from hazina import CircuitStateChanged as Changed
from hazina.redis import RedisBackend
from hazina.testing import FakeClock

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN

# The fixtures of test_redis.py, shared rather than copied.
nodes, node = test_redis.nodes, test_redis.node


def test_the_grown_open_time_is_shared(node: Callable[..., Node]) -> None:
    """A failed probe in one process makes every process wait the grown open time."""
    config = {"failure_threshold": 1, "open_for": 10, "open_for_multiplier": 3, "max_open_for": 50}
    one, other = node(**config), node(**config)
    one.fail()
    one.clock.advance(10)
    one.fail()  # the probe fails: 30 s now
    assert other.breaker.state is OPEN
    assert other.rejected().retry_after == pytest.approx(30.0)
    one.clock.advance(30)
    other.fail()  # 90 s, capped at 50
    assert one.rejected().retry_after == pytest.approx(50.0)


def test_closing_resets_the_shared_open_time(node: Callable[..., Node]) -> None:
    """Once the shared breaker closes, its next trip opens for open_for again."""
    config = {
        "failure_threshold": 1,
        "open_for": 10,
        "open_for_multiplier": 2,
        "success_threshold": 1,
    }
    one, other = node(**config), node(**config)
    one.fail()
    one.clock.advance(10)
    one.fail()
    one.clock.advance(20)
    assert other.breaker.state is HALF_OPEN  # read: its next call asks for a probe
    other.ok()  # the probe closes it
    assert one.breaker.state is CLOSED
    other.fail()
    assert one.breaker.state is OPEN  # read: its view is the shared state now
    assert one.rejected().retry_after == pytest.approx(10.0)


def test_failure_rate_none_on_redis(node: Callable[..., Node]) -> None:
    """The shared rate rule is off with failure_rate=None; the consecutive rule still opens."""
    one = node(failure_rate=None, failure_threshold=3, minimum_calls=2)
    for _ in range(5):
        one.fail(2)
        one.ok()
    assert one.breaker.state is CLOSED
    one.fail(3)
    assert one.breaker.state is OPEN


def test_dry_run_on_redis_refuses_nothing(node: Callable[..., Node]) -> None:
    """A dry-run breaker on Redis opens fleet-wide and reports refusals, but runs every call."""
    one, other = node(failure_threshold=2, dry_run=True), node(failure_threshold=2, dry_run=True)
    one.fail(2)
    runs = other.runs
    other.ok()  # learns of the open breaker from this call's record
    other.ok()  # would be rejected without a round trip
    other.ok()
    assert other.runs == runs + 3
    assert other.breaker.stats().rejections == 2
    assert [e for e in other.events if isinstance(e, CallRejected)] == [
        CallRejected("svc", OPEN, pytest.approx(30.0), dry_run=True)  # type: ignore[arg-type]
    ] * 2
    assert one.events[0] == Changed("svc", CLOSED, OPEN, dry_run=True)


def test_key_is_a_configuration_error_on_redis(redis_url: str) -> None:
    """Keyed breakers are not shared through Redis yet: refused by name, not half-done."""
    registry = hazina.Registry(
        clock=FakeClock(), backend=RedisBackend.from_url(redis_url, clock="registry")
    )
    with pytest.raises(ConfigurationError, match=r"circuit_breaker 'svc': key= is not supported"):
        registry.circuit_breaker("svc", key=lambda host: host)
    keyed = registry.circuit_breaker("svc", key=lambda host: host, backend="memory")
    assert keyed.state_of("a") is CLOSED


def test_dry_run_rate_limiter_on_redis(redis_url: str) -> None:
    """A dry-run limiter on Redis counts refusals and waits but never refuses or sleeps."""
    clock = FakeClock()
    backend = RedisBackend.from_url(redis_url, clock="registry")
    registry = hazina.Registry(clock=clock, backend=backend)
    events: list[object] = []
    registry.subscribe(events.append)
    limiter = registry.rate_limiter("api", rate=1, per=60, dry_run=True)
    limiter.acquire()
    limiter.acquire()
    assert limiter.try_acquire() is True
    waiter = registry.rate_limiter("slow", rate=1, per=60, wait=True, dry_run=True)
    waiter.acquire()
    waiter.acquire()
    assert clock.now() == 0
    assert (limiter.stats().allowed, limiter.stats().rejected) == (3, 2)
    stats = waiter.stats()
    assert (stats.allowed, stats.waited) == (2, 1)
    assert stats.wait_time == pytest.approx(60.0)
    assert [type(event).__name__ for event in events] == ["RateLimitRejected"] * 2 + [
        "RateLimitDelayed"
    ]
    assert all(event.dry_run for event in events)  # type: ignore[attr-defined]
