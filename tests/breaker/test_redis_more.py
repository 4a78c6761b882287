"""Breaker, more, on Redis: the grown open time is shared, dry run and failure_rate=None work.

Nodes (registries on one Redis and one fake clock) stand in for processes, as in
``test_redis.py``, whose fixtures these tests reuse.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import pytest
from redis_server import RedisServer

import hazina
from breaker import test_redis
from breaker.test_redis import Node
from hazina import CallRejected, CircuitOpenError, CircuitState
from hazina import CircuitStateChanged as Changed
from hazina.redis import RedisBackend
from hazina.testing import FakeClock

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN
FORCED_OPEN = CircuitState.FORCED_OPEN
OK = "ok"


class Boom(Exception):
    """The dependency failed."""


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


class KeyedNode:
    """A keyed breaker ("hosts") on one node: the first argument is the key."""

    def __init__(self, node: Node, **config: Any) -> None:
        self.node = node

        def dependency(host: Hashable, fail: bool = False) -> str:
            if fail:
                raise Boom(host)
            return OK

        self.fn = hazina.circuit_breaker(
            "hosts", registry=node.registry, key=lambda host, fail=False: host, **config
        )(node.flavor.define(dependency))
        self.breaker: hazina.CircuitBreaker = self.fn.policy

    def ok(self, host: Hashable) -> None:
        assert self.node.flavor.call(self.fn, host) == OK

    def fail(self, host: Hashable, times: int = 1) -> None:
        for _ in range(times):
            with pytest.raises(Boom):
                self.node.flavor.call(self.fn, host, True)

    def rejected(self, host: Hashable) -> CircuitOpenError:
        with pytest.raises(CircuitOpenError) as info:
            self.node.flavor.call(self.fn, host)
        return info.value


def test_a_keys_state_is_shared_and_other_keys_are_not_affected(
    node: Callable[..., Node],
) -> None:
    """One process opens a key; another process is refused for that key only."""
    one, other = KeyedNode(node(), failure_threshold=2), KeyedNode(node(), failure_threshold=2)
    other.ok("a")
    one.fail("a", 2)
    assert other.breaker.state_of("a") is OPEN
    error = other.rejected("a")
    assert error.key == "a"
    assert error.retry_after == pytest.approx(30.0)
    other.ok("b")
    one.ok("b")
    assert other.breaker.state_of("b") is CLOSED
    assert other.breaker.state is CLOSED
    stats = other.breaker.stats()
    assert (stats.calls, stats.rejections, stats.open_keys) == (2, 1, 1)
    assert [e.key for e in one.node.events if isinstance(e, Changed)] == ["a"]


def test_keyed_state_keys_expire(node: Callable[..., Node]) -> None:
    """Every key's state in Redis has a TTL, so keys nobody calls are forgotten."""
    one = KeyedNode(node(), failure_threshold=1)
    one.fail("a")
    one.ok("b")
    client = one.node.client
    names = client.keys("hazina:{circuit_breaker:hosts:*")
    assert len(names) >= 2
    assert all(client.pttl(name) > 0 for name in names)


def test_a_process_forgets_views_not_shared_state(node: Callable[..., Node]) -> None:
    """max_keys bounds this process's views; a forgotten view re-reads the key's state."""
    one = KeyedNode(node(), failure_threshold=1, max_keys=2)
    one.fail("a")
    one.ok("b")
    one.ok("c")  # "a"'s view goes
    assert one.rejected("a").key == "a"


def test_force_open_and_reset_act_on_every_key_fleet_wide(node: Callable[..., Node]) -> None:
    """force_open() refuses every key in every process; reset() starts every key afresh."""
    one, other = KeyedNode(node(), failure_threshold=1), KeyedNode(node(), failure_threshold=1)
    one.fail("a")
    other.breaker.force_open()
    assert one.breaker.state is FORCED_OPEN
    assert one.rejected("b").retry_after is None
    assert one.breaker.state_of("anything") is FORCED_OPEN
    other.breaker.reset()
    assert one.breaker.state is CLOSED
    one.ok("a")  # "a" was open before the reset: fresh now
    assert other.breaker.state_of("a") is CLOSED


def test_keyed_dry_run_on_redis_refuses_nothing(node: Callable[..., Node]) -> None:
    """A keyed dry-run breaker on Redis reports the key's refusal and runs the call."""
    one = KeyedNode(node(), failure_threshold=1, dry_run=True)
    one.fail("a")
    one.fail("a")  # would have been rejected
    events = [e for e in one.node.events if isinstance(e, CallRejected)]
    assert [(e.key, e.dry_run) for e in events] == [("a", True)]
    assert one.breaker.stats().failures == 2


def test_keys_that_redis_cannot_encode_are_type_errors(node: Callable[..., Node]) -> None:
    """A key of a type with no canonical encoding is a TypeError naming the breaker."""
    one = KeyedNode(node())
    with pytest.raises(TypeError, match="circuit_breaker 'hosts'"):
        one.ok(frozenset({1}))


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


# Fixtures of test_redis.py for a Redis of the test's own, to kill.
fault_node = test_redis.fault_node


def test_keyed_local_mode_keeps_keys_apart_during_an_outage(
    fault_node: Callable[..., Node], own_redis: RedisServer
) -> None:
    """With "local", each key's stand-in opens on its own failures while Redis is down."""
    one = KeyedNode(
        fault_node("local", "hosts-local"), failure_threshold=2, on_backend_error="local"
    )
    one.ok("a")
    one.ok("b")
    own_redis.kill()
    one.fail("a", 2)
    assert one.rejected("a").key == "a"
    one.ok("b")
    assert one.breaker.stats().backend_errors >= 1


def test_keyed_deny_mode_names_the_key(
    fault_node: Callable[..., Node], own_redis: RedisServer
) -> None:
    """With "deny", a keyed call refused during an outage carries its key."""
    one = KeyedNode(fault_node("deny", "hosts-deny"), on_backend_error="deny")
    one.ok("a")
    own_redis.kill()
    one.ok("a")  # its record failed: the outage starts here
    error = one.rejected("a")
    assert error.key == "a"
    assert error.retry_after is not None
