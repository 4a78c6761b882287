"""Keyed breakers: one breaker state per key under one policy, in a bounded key table.

Every scenario runs sync and async through the ``flavor`` fixture, except the
concurrency claims, which use real threads and real asyncio tasks.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Hashable
from typing import Any

import pytest
from conftest import Flavor

import hazina
from hazina import CallRejected, CircuitOpenError, CircuitState
from hazina import CircuitStateChanged as Changed
from hazina.testing import FakeClock

CLOSED, OPEN = CircuitState.CLOSED, CircuitState.OPEN
HALF_OPEN, FORCED_OPEN = CircuitState.HALF_OPEN, CircuitState.FORCED_OPEN
OK = "ok"


class Boom(Exception):
    """The dependency failed."""


class Hosts:
    """A dependency with many hosts behind one keyed breaker; the first argument is the key."""

    def __init__(
        self, flavor: Flavor, registry: hazina.Registry, name: str = "hosts", **config: Any
    ) -> None:
        self.flavor = flavor
        self.runs: dict[Hashable, int] = {}

        def dependency(host: Hashable, outcome: object = OK) -> object:
            self.runs[host] = self.runs.get(host, 0) + 1
            if isinstance(outcome, BaseException):
                raise outcome
            if callable(outcome):
                return outcome()
            return outcome

        config.setdefault("key", lambda host, outcome=OK: host)
        self.fn = hazina.circuit_breaker(name, registry=registry, **config)(
            flavor.define(dependency)
        )
        self.breaker: hazina.CircuitBreaker = self.fn.policy

    def ok(self, host: Hashable, times: int = 1) -> None:
        for _ in range(times):
            assert self.flavor.call(self.fn, host) == OK

    def fail(self, host: Hashable, times: int = 1) -> None:
        for _ in range(times):
            with pytest.raises(Boom):
                self.flavor.call(self.fn, host, Boom())

    def rejected(self, host: Hashable) -> CircuitOpenError:
        runs = self.runs.get(host, 0)
        with pytest.raises(CircuitOpenError) as info:
            self.flavor.call(self.fn, host)
        assert self.runs.get(host, 0) == runs, "a rejected call must not run the function"
        return info.value


def test_one_keys_failures_never_open_another(flavor: Flavor, registry: hazina.Registry) -> None:
    """A key that fails opens its own state only; other keys keep passing calls."""
    hosts = Hosts(flavor, registry, failure_threshold=3)
    hosts.ok("b")
    hosts.fail("a", 3)
    error = hosts.rejected("a")
    hosts.ok("b", 5)
    hosts.ok("c")
    assert (error.name, error.key, error.retry_after) == ("hosts", "a", 30.0)
    assert hosts.breaker.state_of("a") is OPEN
    assert hosts.breaker.state_of("b") is CLOSED
    assert hosts.breaker.state_of("never-seen") is CLOSED


def test_each_key_goes_through_half_open_on_its_own(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """A key's open period, probes and closing are its own."""
    hosts = Hosts(flavor, registry, failure_threshold=1, open_for=10, success_threshold=1)
    hosts.fail("a")
    clock.advance(5)
    hosts.fail("b")
    clock.advance(5)
    assert hosts.breaker.state_of("a") is HALF_OPEN
    assert hosts.breaker.state_of("b") is OPEN
    hosts.ok("a")
    assert hosts.breaker.state_of("a") is CLOSED
    assert hosts.rejected("b").retry_after == 5.0


def test_policy_state_describes_the_whole_policy(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """state, rates and retry_after of a keyed breaker describe the policy; open_keys counts."""
    hosts = Hosts(flavor, registry, failure_threshold=1, open_for=10)
    hosts.fail("a")
    hosts.fail("b")
    hosts.ok("c", 2)
    stats = hosts.breaker.stats()
    assert hosts.breaker.state is CLOSED
    assert (stats.state, stats.failure_rate, stats.retry_after, stats.open_keys) == (
        CLOSED,
        None,
        None,
        2,
    )
    clock.advance(10)
    assert hosts.breaker.stats().open_keys == 2  # half-open counts as open
    hosts.ok("a")
    hosts.ok("a")
    assert hosts.breaker.stats().open_keys == 1


def test_stats_add_up_over_all_keys(flavor: Flavor, registry: hazina.Registry) -> None:
    """calls, successes, failures and rejections count every key's calls."""
    hosts = Hosts(flavor, registry, failure_threshold=2)
    hosts.ok("a", 3)
    hosts.fail("b", 2)
    hosts.rejected("b")
    hosts.rejected("b")
    hosts.ok("c")
    stats = hosts.breaker.stats()
    assert (stats.calls, stats.successes, stats.failures, stats.rejections) == (6, 4, 2, 2)


def test_force_open_rejects_every_key_and_reset_forgets_them(
    flavor: Flavor, registry: hazina.Registry, events: list[object]
) -> None:
    """force_open() refuses known and new keys with retry_after None; reset() closes all."""
    hosts = Hosts(flavor, registry, failure_threshold=1)
    hosts.ok("a")
    hosts.fail("b")
    hosts.breaker.force_open()
    assert hosts.breaker.state is FORCED_OPEN
    assert hosts.rejected("a").retry_after is None
    assert hosts.rejected("new").key == "new"
    assert hosts.breaker.state_of("other") is FORCED_OPEN
    assert hosts.breaker.stats().open_keys == 0  # forced is not "open now"
    changes = [event for event in events if isinstance(event, Changed)]
    assert [(c.key, c.new) for c in changes] == [("b", OPEN), (None, FORCED_OPEN)]
    hosts.breaker.reset()
    assert hosts.breaker.state is CLOSED
    assert hosts.breaker.state_of("b") is CLOSED
    hosts.ok("b")
    assert hosts.breaker.stats().calls == 1


def test_reset_reports_each_open_key_closing(
    flavor: Flavor, registry: hazina.Registry, events: list[object]
) -> None:
    """reset() emits a closing for each key that was not closed, and zeroes the counts."""
    hosts = Hosts(flavor, registry, failure_threshold=1)
    hosts.fail("a")
    hosts.ok("b")
    events.clear()
    hosts.breaker.reset()
    assert events == [Changed("hosts", OPEN, CLOSED, key="a")]
    stats = hosts.breaker.stats()
    assert (stats.calls, stats.failures, stats.open_keys) == (0, 0, 0)


def test_events_carry_the_key(
    flavor: Flavor, registry: hazina.Registry, events: list[object]
) -> None:
    """State changes and rejections name the key they are about."""
    hosts = Hosts(flavor, registry, failure_threshold=1)
    hosts.fail(("db", 2))
    hosts.rejected(("db", 2))
    assert events == [
        Changed("hosts", CLOSED, OPEN, key=("db", 2)),
        CallRejected("hosts", OPEN, 30.0, key=("db", 2)),
    ]


def test_an_unhashable_key_is_a_clear_type_error(flavor: Flavor, registry: hazina.Registry) -> None:
    """A key function returning an unhashable value names the policy and the key."""
    hosts = Hosts(flavor, registry, key=lambda host, outcome=OK: [host])
    with pytest.raises(TypeError, match=r"circuit_breaker 'hosts': the key \['a'\] is not hash"):
        hosts.ok("a")
    assert hosts.runs == {}
    with pytest.raises(TypeError, match="not hashable"):
        hosts.breaker.state_of(["a"])  # type: ignore[arg-type]


def test_time_window_and_slow_calls_work_per_key(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """The timed path (time window, slow-call rule) judges each key on its own calls."""
    hosts = Hosts(
        flavor,
        registry,
        window="time",
        window_size=10,
        minimum_calls=2,
        slow_call_duration=1.0,
        slow_call_rate=0.5,
        failure_threshold=None,
    )

    def slow() -> str:
        clock.advance(2)
        return OK

    hosts.ok("a")
    assert flavor.call(hosts.fn, "a", slow) == OK
    hosts.ok("b", 2)
    assert hosts.breaker.state_of("a") is OPEN
    assert hosts.breaker.state_of("b") is CLOSED
    assert hosts.breaker.stats().slow_calls == 1


# -- the bounded key table ---------------------------------------------------------------------


def test_the_table_never_grows_past_max_keys(flavor: Flavor, registry: hazina.Registry) -> None:
    """A flood of new keys keeps at most max_keys states, and counts every call."""
    hosts = Hosts(flavor, registry, max_keys=8)
    for host in range(100):
        hosts.ok(host)
    keyed = hosts.breaker._keyed
    assert keyed is not None
    assert len(keyed.table) == 8
    assert hosts.breaker.stats().calls == 100


def test_open_keys_outlive_closed_ones_when_room_is_needed(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """Closed keys with nothing to remember are forgotten before an open key."""
    hosts = Hosts(flavor, registry, max_keys=4, failure_threshold=1)
    hosts.fail("bad")  # the least recently used key from here on
    for host in range(50):
        hosts.ok(host)
    assert hosts.breaker.state_of("bad") is OPEN
    hosts.rejected("bad")


def test_busy_keys_outlive_idle_ones(flavor: Flavor, registry: hazina.Registry) -> None:
    """A key used since the table last looked gets a second chance; an idle one goes."""
    hosts = Hosts(flavor, registry, max_keys=3, failure_threshold=None, minimum_calls=3)
    # One failure each: closed but not clean, so none is forgotten for being closed.
    hosts.fail("busy")
    hosts.fail("idle")
    hosts.fail("other")
    hosts.ok("busy")  # used again since it came in
    hosts.ok("new")  # needs room: "busy" is the oldest, but was used; "idle" was not
    keyed = hosts.breaker._keyed
    assert keyed is not None
    assert set(keyed.table.entries) == {"busy", "other", "new"}
    hosts.fail("busy")  # 2 failures in 3 calls: its window was kept
    assert hosts.breaker.state_of("busy") is OPEN


def test_a_failure_of_a_call_that_outlived_its_key_still_counts(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """A key forgotten while its call runs: the call's failure counts for the key's new state."""
    hosts = Hosts(flavor, registry, max_keys=1, failure_threshold=2)
    keyed = hosts.breaker._keyed
    assert keyed is not None

    def crowd_out_then_fail() -> object:
        keyed.circuit("b")  # another key takes the only place while "a" runs
        raise Boom("down")

    with pytest.raises(Boom):
        flavor.call(hosts.fn, "a", crowd_out_then_fail)
    hosts.fail("a")  # the second failure in a row of "a"'s state now
    assert hosts.breaker.state_of("a") is OPEN
    stats = hosts.breaker.stats()
    assert (stats.calls, stats.failures) == (2, 2)


def test_a_success_of_a_call_that_outlived_its_key_still_counts(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """A closed key forgotten while its call runs: the call still counts once it returns."""
    hosts = Hosts(flavor, registry, max_keys=1)
    keyed = hosts.breaker._keyed
    assert keyed is not None

    def crowd_out() -> str:
        keyed.circuit("b")  # another key takes the only place while "a" runs
        return OK

    hosts.ok("a")
    assert flavor.call(hosts.fn, "a", crowd_out) == OK
    hosts.ok("b")
    stats = hosts.breaker.stats()
    assert (stats.calls, stats.successes) == (3, 3)


def test_a_block_cannot_be_keyed(registry: hazina.Registry) -> None:
    """``with breaker:`` has no arguments to key by: a clear TypeError, not a silent guess."""
    breaker = registry.circuit_breaker("hosts", key=lambda host: host)
    with pytest.raises(TypeError, match="decorate a function"), breaker:
        pass


def test_state_of_needs_a_keyed_breaker(registry: hazina.Registry) -> None:
    """state_of() on a breaker without key= is a TypeError pointing at state."""
    with pytest.raises(TypeError, match="has no key="):
        registry.circuit_breaker("plain").state_of("a")


# -- concurrency -----------------------------------------------------------------------------

THREADS, CALLS = 8, 500


def test_threads_keep_exact_per_key_counts(registry: hazina.Registry) -> None:
    """8 threads on 4 keys: every call is counted, and only the failing key opens."""
    breaker = registry.circuit_breaker(
        "hosts", key=lambda host, fail: host, failure_threshold=None, minimum_calls=50
    )

    @hazina.circuit_breaker("hosts", registry=registry)
    def call(host: int, fail: bool) -> None:
        if fail:
            raise Boom(host)

    start = threading.Barrier(THREADS)
    rejected = [0] * THREADS

    def work(index: int) -> None:
        start.wait()
        for _ in range(CALLS):
            host = index % 4
            try:
                call(host, host == 0)
            except Boom:
                pass
            except CircuitOpenError:
                rejected[index] += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    stats = breaker.stats()
    assert stats.calls + stats.rejections == THREADS * CALLS
    assert stats.rejections == sum(rejected)
    # Key 0 (two threads) opened after minimum_calls failures; a call of the other thread
    # still running then completes, so 50 or 51. Every one of its calls is counted once.
    assert stats.failures in (50, 51)
    assert stats.failures + stats.rejections == 2 * CALLS
    assert stats.successes == 6 * CALLS
    assert breaker.state_of(0) is OPEN
    assert [breaker.state_of(host) for host in (1, 2, 3)] == [CLOSED] * 3
    assert stats.open_keys == 1


def test_tasks_keep_exact_per_key_counts(registry: hazina.Registry) -> None:
    """1,000 tasks on 10 keys: every call counted once; one key's failures stay its own."""

    @hazina.circuit_breaker(
        "hosts", registry=registry, key=lambda host: host, failure_threshold=None
    )
    async def call(host: int) -> int:
        await asyncio.sleep(0)
        if host == 7:
            raise Boom(host)
        return host

    async def main() -> list[object]:
        return await asyncio.gather(
            *(call(index % 10) for index in range(1000)), return_exceptions=True
        )

    results = asyncio.run(main())
    breaker = call.policy
    stats = breaker.stats()
    assert stats.calls + stats.rejections == 1000
    assert sum(isinstance(result, Boom) for result in results) == stats.failures
    # All 1,000 were admitted before any completed: key 7's 100 calls all ran and failed.
    assert (stats.calls, stats.successes, stats.failures) == (1000, 900, 100)
    assert breaker.state_of(7) is OPEN
    assert all(breaker.state_of(host) is CLOSED for host in range(10) if host != 7)


def test_threads_churning_a_small_table_lose_no_call(registry: hazina.Registry) -> None:
    """8 threads on 100 keys with room for 16: the table stays bounded, every call counts."""

    @hazina.circuit_breaker("hosts", registry=registry, key=lambda host: host, max_keys=16)
    def call(host: int) -> int:
        if host % 10 == 0:
            raise Boom(host)
        return host

    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def work(index: int) -> None:
        start.wait()
        for n in range(CALLS):
            try:
                call((index * 37 + n * 13) % 100)
            except (Boom, CircuitOpenError):
                pass
            except BaseException as error:  # anything else is a defect of the table
                errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    stats = call.policy.stats()
    assert errors == []
    assert stats.calls + stats.rejections == THREADS * CALLS
    keyed = call.policy._keyed
    assert keyed is not None
    assert len(keyed.table) <= 16
