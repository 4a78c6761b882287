"""The circuit breaker on Redis: one breaker for a fleet, cheap while closed, safe when Redis fails.

Registries made on one Redis stand in for processes where a test only needs two views of
the shared state; the claims about processes (opened here, rejected there; the number of
probes fleet-wide; a probe whose process dies) run real processes. Time moves with the
fake clock (``clock="registry"``); the few real-time waits are the backend's
``retry_interval`` (a fraction of a second) and safety nets against hangs.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio
from conftest import Flavor
from redis.backoff import NoBackoff
from redis_server import RedisServer

import hazina
from hazina import CallRejected, CircuitOpenError, CircuitState
from hazina import CircuitStateChanged as Changed
from hazina.redis import RedisBackend
from hazina.testing import FakeClock

CLOSED, OPEN = CircuitState.CLOSED, CircuitState.OPEN
HALF_OPEN, FORCED_OPEN = CircuitState.HALF_OPEN, CircuitState.FORCED_OPEN
OK = "ok"
START = 1000.0
#: Real seconds a worker process may take before the test calls it stuck.
JOIN = 20.0
#: The backend's timeout on each Redis command.
TIMEOUT = 0.25


class Boom(Exception):
    """The dependency failed."""


class Ignored(Exception):
    """An error the breakers below are told to ignore."""


def _registry(
    url: str, clock: FakeClock, *, retry_interval: float = 1.0, sync_interval: float = 1.0
) -> hazina.Registry:
    backend = RedisBackend.from_url(
        url,
        clock="registry",
        retry_interval=retry_interval,
        sync_interval=sync_interval,
    )
    return hazina.Registry(clock=clock, backend=backend)


def _clients(url: str) -> tuple[redis.Redis, redis.asyncio.Redis]:
    """Clients set up as RedisBackend.from_url sets its own, for a test to close."""
    options: dict[str, Any] = {"socket_timeout": TIMEOUT, "socket_connect_timeout": TIMEOUT}
    return (
        redis.Redis.from_url(url, retry=redis.retry.Retry(NoBackoff(), 0), **options),
        redis.asyncio.Redis.from_url(
            url, retry=redis.asyncio.retry.Retry(NoBackoff(), 0), **options
        ),
    )


class Node:
    """One "process": a registry on the shared Redis, its events, and a guarded function."""

    def __init__(
        self,
        flavor: Flavor,
        url: str,
        clock: FakeClock,
        name: str = "svc",
        *,
        retry_interval: float = 1.0,
        sync_interval: float = 1.0,
        **config: Any,
    ) -> None:
        self.flavor = flavor
        self.clock = clock
        self.client, self.async_client = _clients(url)
        backend = RedisBackend(
            client=self.client,
            async_client=self.async_client,
            clock="registry",
            timeout=TIMEOUT,
            retry_interval=retry_interval,
            sync_interval=sync_interval,
        )
        self.registry = hazina.Registry(clock=clock, backend=backend)
        self.events: list[object] = []
        self.registry.subscribe(self.events.append)
        self.runs = 0

        def dependency(outcome: object = OK) -> object:
            self.runs += 1
            if isinstance(outcome, BaseException):
                raise outcome
            if callable(outcome):
                return outcome()
            return outcome

        self.fn = hazina.circuit_breaker(name, registry=self.registry, **config)(
            flavor.define(dependency)
        )
        self.breaker: hazina.CircuitBreaker = self.fn.policy

    def call(self, outcome: object = OK) -> object:
        """One call through the breaker."""
        return self.flavor.call(self.fn, outcome)

    def ok(self, times: int = 1) -> None:
        """``times`` successful calls."""
        for _ in range(times):
            assert self.call() == OK

    def fail(self, times: int = 1) -> None:
        """``times`` calls that fail, each failure reaching the caller."""
        for _ in range(times):
            with pytest.raises(Boom):
                self.call(Boom())

    def rejected(self) -> CircuitOpenError:
        """A call the breaker refuses without running the function."""
        runs = self.runs
        with pytest.raises(CircuitOpenError) as caught:
            self.call()
        assert self.runs == runs
        return caught.value

    def slow(self, seconds: float) -> None:
        """A successful call that takes ``seconds`` on the fake clock."""

        def taking_its_time() -> str:
            self.clock.advance(seconds)
            return OK

        assert self.call(taking_its_time) == OK

    def changes(self) -> list[tuple[CircuitState, CircuitState]]:
        """The state changes this node emitted, in order."""
        return [(event.old, event.new) for event in self.events if isinstance(event, Changed)]

    def close(self) -> None:
        """Close the node's clients (the async one on the loop it ran on)."""
        self.client.close()
        if self.flavor.is_async:
            self.flavor.call(self.async_client.aclose)


@pytest.fixture
def registries() -> Iterator[Callable[..., hazina.Registry]]:
    """Make sync registries on a Redis (stand-ins for this process); closed at the end."""
    clients: list[redis.Redis] = []

    def make(url: str, clock: FakeClock, **options: Any) -> hazina.Registry:
        client, _ = _clients(url)
        clients.append(client)
        backend = RedisBackend(client=client, clock="registry", timeout=TIMEOUT, **options)
        return hazina.Registry(clock=clock, backend=backend)

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def nodes(flavor: Flavor) -> Iterator[Callable[..., Node]]:
    """Make nodes of the test's flavor on any Redis; their clients are closed at the end."""
    made: list[Node] = []

    def make(
        url: str, clock: FakeClock, name: str = "svc", *, sync: bool = False, **config: Any
    ) -> Node:
        made.append(Node(Flavor(False, None) if sync else flavor, url, clock, name, **config))
        return made[-1]

    yield make
    for each in made:
        each.close()


@pytest.fixture
def node(nodes: Callable[..., Node], redis_url: str) -> Callable[..., Node]:
    """Make nodes (stand-ins for processes) on the session Redis, all on one fake clock."""
    clock = FakeClock(start=START)

    def make(name: str = "svc", *, sync: bool = False, **config: Any) -> Node:
        return nodes(redis_url, clock, name, sync=sync, **config)

    return make


def _evalsha_calls(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


# -- rules, shared ------------------------------------------------------------------------


def test_closed_breaker_passes_calls_and_counts_them(node: Callable[..., Node]) -> None:
    """A closed breaker runs the function, returns its result and counts this process's calls."""
    one = node(ignore_on=Ignored)
    assert one.call("value") == "value"
    one.fail()
    with pytest.raises(Ignored):
        one.call(Ignored())
    stats = one.breaker.stats()
    assert (stats.state, stats.calls, stats.successes, stats.failures) == (CLOSED, 3, 1, 1)
    assert (stats.ignored, stats.rejections, stats.backend_errors) == (1, 0, 0)


def test_consecutive_failures_of_two_processes_add_up(node: Callable[..., Node]) -> None:
    """Failures recorded by two processes make one run: the breaker opens at the threshold."""
    one, other = node(failure_threshold=4), node(failure_threshold=4)
    one.fail(2)
    other.fail(1)
    assert one.breaker.state is CLOSED
    one.fail(1)
    assert other.breaker.state is OPEN


def test_a_process_learns_of_an_open_breaker_on_its_next_call(node: Callable[..., Node]) -> None:
    """The first call after another process opened it still runs (none asks first); then rejects."""
    one, other = node(failure_threshold=2), node(failure_threshold=2)
    other.ok()
    one.fail(2)
    other.ok()  # its view was closed: this call ran, and its record answered "open"
    error = other.rejected()
    assert error.retry_after == pytest.approx(30.0)


def test_success_breaks_a_shared_run(node: Callable[..., Node]) -> None:
    """A success recorded by any process restarts the shared consecutive count."""
    one, other = node(failure_threshold=3), node(failure_threshold=3)
    one.fail(2)
    other.ok()
    one.fail(2)
    assert one.breaker.state is CLOSED
    other.fail()
    assert one.breaker.state is OPEN


def test_ignored_calls_count_as_neither_and_keep_the_run(node: Callable[..., Node]) -> None:
    """An ignore_on error counts only as ignored in this process and does not break a run."""
    one = node(failure_threshold=2, ignore_on=Ignored)
    one.fail()
    with pytest.raises(Ignored):
        one.call(Ignored())
    assert one.breaker.stats().ignored == 1
    one.fail()
    assert one.breaker.state is OPEN


def test_rate_rule_waits_for_minimum_calls_and_a_failure(node: Callable[..., Node]) -> None:
    """The failure rate opens it only after a failure, once the window holds minimum_calls."""
    one = node(failure_threshold=None, minimum_calls=4, window_size=10)
    one.fail(3)
    assert one.breaker.state is CLOSED
    one.ok()  # four calls, 75% failed, but a plain success never evaluates the rate
    assert one.breaker.stats().failure_rate == 0.75
    assert one.breaker.state is CLOSED
    one.fail()
    assert one.breaker.state is OPEN


def test_count_window_failures_slide_out(node: Callable[..., Node]) -> None:
    """Only the last window_size calls count, across processes."""
    one = node(failure_threshold=None, minimum_calls=4, window_size=4)
    other = node(failure_threshold=None, minimum_calls=4, window_size=4)
    one.fail()
    other.ok(4)  # pushes that failure out
    one.fail()  # 1 of the last 4
    assert one.breaker.stats().failure_rate == 0.25
    other.ok()
    one.fail()  # 2 of the last 4
    assert one.breaker.state is OPEN


def test_time_window_forgets_old_failures(node: Callable[..., Node]) -> None:
    """Calls older than window_size seconds leave a time window and weigh no more."""
    one = node(window="time", window_size=10, failure_threshold=None, minimum_calls=4)
    one.fail(3)
    one.clock.advance(10)
    one.ok(3)
    one.fail()  # 1 failure in 4 calls inside the window
    assert one.breaker.stats().failure_rate == 0.25
    assert one.breaker.state is CLOSED
    one.clock.advance(5)
    one.fail()  # 2 of 5
    assert one.breaker.state is CLOSED
    one.fail()  # 3 of 6
    assert one.breaker.state is OPEN


def test_slow_call_rate_opens(node: Callable[..., Node]) -> None:
    """Slow calls count in slow_calls and open the shared breaker once their rate is reached."""
    one = node(
        slow_call_duration=1.0,
        slow_call_rate=0.5,
        minimum_calls=4,
        window_size=10,
        failure_threshold=None,
    )
    one.ok(2)
    one.slow(1.5)
    assert one.breaker.state is CLOSED
    one.slow(2.0)
    stats = one.breaker.stats()
    assert (stats.state, stats.slow_calls) == (OPEN, 2)


# -- open: rejections without round trips ---------------------------------------------------


def test_open_breaker_rejects_without_round_trips_until_sync_interval(
    node: Callable[..., Node], redis_url: str
) -> None:
    """A process that saw it open rejects locally, re-reading Redis at most every sync_interval."""
    one = node(failure_threshold=1, open_for=30)
    one.fail()
    with redis.Redis.from_url(redis_url) as client:
        before = _evalsha_calls(client)
        for _ in range(20):
            assert one.rejected().retry_after == pytest.approx(30.0)
        assert _evalsha_calls(client) == before
        one.clock.advance(1.0)  # sync_interval: the next rejection re-reads the state
        assert one.rejected().retry_after == pytest.approx(29.0)
        assert one.rejected().retry_after == pytest.approx(29.0)
        assert _evalsha_calls(client) == before + 1


def test_reset_elsewhere_is_seen_after_sync_interval(node: Callable[..., Node]) -> None:
    """A breaker closed by another process admits here once this process re-reads it."""
    one, other = node(failure_threshold=1), node(failure_threshold=1)
    one.fail()
    one.rejected()
    other.breaker.reset()
    one.rejected()  # still within the open period it read, and within sync_interval
    one.clock.advance(1.0)
    one.ok()


def test_probe_admitted_when_the_open_period_ends(node: Callable[..., Node]) -> None:
    """At the end of the open period it read, a process asks Redis and is admitted as a probe."""
    one = node(failure_threshold=1, open_for=10, success_threshold=2)
    one.fail()
    one.clock.advance(9.5)
    assert one.rejected().retry_after == pytest.approx(0.5)
    one.clock.advance(0.5)
    one.ok()
    assert one.breaker.state is HALF_OPEN
    one.ok()
    assert one.breaker.state is CLOSED
    assert one.changes() == [(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED)]


def test_state_retry_after_and_stats_read_the_shared_state(node: Callable[..., Node]) -> None:
    """state, retry_after and stats() read Redis: an elapsed open_for reads half_open."""
    one, other = node(failure_threshold=1, open_for=10), node(failure_threshold=1, open_for=10)
    one.fail()
    assert other.breaker.state is OPEN
    other.clock.advance(4)
    assert other.breaker.retry_after == pytest.approx(6.0)  # type: ignore[attr-defined]
    assert other.breaker.stats().retry_after == pytest.approx(6.0)
    other.clock.advance(6)
    assert other.breaker.state is HALF_OPEN
    assert other.breaker.stats().retry_after is None


# -- half-open --------------------------------------------------------------------------------


def test_failed_probe_reopens_for_a_fresh_open_for(node: Callable[..., Node]) -> None:
    """Any failed probe reopens the shared breaker, whose new period every process reads."""
    one, other = node(failure_threshold=1, open_for=10), node(failure_threshold=1, open_for=10)
    one.fail()
    one.clock.advance(10)
    one.fail()
    assert other.breaker.state is OPEN
    assert other.breaker.stats().retry_after == pytest.approx(10.0)


def test_probes_in_flight_are_counted_fleet_wide(node: Callable[..., Node]) -> None:
    """While one process's probe runs, another process's call is rejected (one probe by default)."""
    one = node(failure_threshold=1, open_for=10)
    other = node(failure_threshold=1, open_for=10, sync=True)  # called from inside the probe
    one.fail()
    assert other.breaker.state is OPEN  # a process that has not seen it open would just call
    one.clock.advance(10)
    seen: list[float | None] = []

    def inside_the_probe() -> str:
        one.clock.advance(2)
        with pytest.raises(CircuitOpenError) as caught:
            other.flavor.call(other.fn)  # the other process, racing for the only slot
        seen.append(caught.value.retry_after)
        return OK

    assert one.call(inside_the_probe) == OK
    assert seen == [pytest.approx(8.0)]  # time left until half_open_timeout
    other.ok()  # the slot is free again
    assert other.breaker.state is CLOSED
    assert [e for e in other.events if isinstance(e, CallRejected)] == [
        CallRejected("svc", HALF_OPEN, pytest.approx(8.0))  # type: ignore[arg-type]
    ]


def test_ignored_probe_frees_its_slot(node: Callable[..., Node]) -> None:
    """A probe raising an ignore_on error neither closes nor reopens, and frees its slot."""
    one = node(failure_threshold=1, open_for=10, ignore_on=Ignored)
    one.fail()
    one.clock.advance(10)
    with pytest.raises(Ignored):
        one.call(Ignored())
    assert one.breaker.state is HALF_OPEN
    one.ok(2)
    assert one.breaker.state is CLOSED


def test_cancelled_probe_frees_its_slot(redis_url: str) -> None:
    """Cancelling an async probe counts as neither outcome and frees the shared slot."""
    clock = FakeClock(start=START)
    client = redis.asyncio.Redis.from_url(redis_url)
    registry = hazina.Registry(
        clock=clock, backend=RedisBackend(async_client=client, clock="registry")
    )
    started = asyncio.Event()

    @hazina.circuit_breaker("svc", registry=registry, failure_threshold=1, open_for=10)
    async def dependency(fail: bool = False, hang: bool = False) -> str:
        if fail:
            raise Boom
        if hang:
            started.set()
            await asyncio.Event().wait()
        return OK

    async def scenario() -> None:
        with pytest.raises(Boom):
            await dependency(fail=True)
        clock.advance(10)
        probe = asyncio.create_task(dependency(hang=True))
        await asyncio.wait_for(started.wait(), 5)
        with pytest.raises(CircuitOpenError):
            await dependency()
        probe.cancel()
        with pytest.raises(asyncio.CancelledError):
            await probe
        assert await dependency() == OK  # the slot was freed
        assert await dependency() == OK
        assert dependency.policy.stats().ignored == 1
        await client.aclose()

    asyncio.run(scenario())


def test_stale_probe_after_timeout_changes_nothing(node: Callable[..., Node]) -> None:
    """A probe that returns after half_open_timeout reopened the breaker cannot close it."""
    one = node(failure_threshold=1, open_for=10, half_open_timeout=5, success_threshold=1)
    other = node(failure_threshold=1, open_for=10, half_open_timeout=5, success_threshold=1)
    one.fail()
    one.clock.advance(10)

    def slow_probe() -> str:
        one.clock.advance(6)
        assert other.breaker.state is OPEN  # reopened at the deadline, 1 s ago
        return OK

    assert one.call(slow_probe) == OK
    assert other.breaker.state is OPEN
    assert other.breaker.stats().retry_after == pytest.approx(9.0)


# -- controls and events ----------------------------------------------------------------------


def test_force_open_and_reset_act_fleet_wide(node: Callable[..., Node]) -> None:
    """force_open() in one process rejects in others with retry_after None; reset() closes it."""
    one, other = node(), node()
    one.breaker.force_open()
    assert other.breaker.state is FORCED_OPEN
    assert other.rejected().retry_after is None
    other.clock.advance(3600)
    assert other.breaker.state is FORCED_OPEN
    one.breaker.reset()
    assert other.breaker.state is CLOSED
    other.ok()


def test_reset_zeroes_this_process_counters(node: Callable[..., Node]) -> None:
    """reset() closes the shared breaker and puts this process's counters back to zero."""
    one = node(failure_threshold=1)
    one.fail()
    one.rejected()
    one.breaker.reset()
    stats = one.breaker.stats()
    assert (stats.state, stats.calls, stats.failures, stats.rejections) == (CLOSED, 0, 0, 0)


def test_changes_are_emitted_only_by_the_process_that_made_them(
    node: Callable[..., Node],
) -> None:
    """A state change shows in the process whose round trip made it; a rejection where it is."""
    one, other = node(failure_threshold=1, open_for=10), node(failure_threshold=1, open_for=10)
    one.fail()
    other.ok()  # learns of it, changed nothing
    other.rejected()
    assert one.changes() == [(CLOSED, OPEN)]
    assert other.changes() == []
    assert [type(e) for e in other.events] == [CallRejected]
    assert [type(e) for e in one.events] == [Changed]
    other.clock.advance(10)
    assert other.breaker.state is HALF_OPEN  # this read made the change
    assert one.breaker.state is HALF_OPEN
    assert other.changes() == [(OPEN, HALF_OPEN)]
    assert one.changes() == [(CLOSED, OPEN)]


def test_blocks_use_the_shared_breaker(node: Callable[..., Node], flavor: Flavor) -> None:
    """`with breaker:` / `async with breaker:` record outcomes and reject like decorated calls."""
    one = node(failure_threshold=2)

    def block(error: BaseException | None = None) -> None:
        if flavor.is_async:

            async def run() -> None:
                async with one.breaker:
                    if error is not None:
                        raise error

            flavor.call(run)
        else:
            with one.breaker:
                if error is not None:
                    raise error

    block()
    for _ in range(2):
        with pytest.raises(Boom):
            block(Boom())
    with pytest.raises(CircuitOpenError):
        block()
    stats = one.breaker.stats()
    assert (stats.state, stats.successes, stats.failures, stats.rejections) == (OPEN, 1, 2, 1)


# -- Redis itself -------------------------------------------------------------------------------


def test_a_closed_call_makes_exactly_one_round_trip(
    node: Callable[..., Node], redis_url: str
) -> None:
    """Each call while closed is one EVALSHA (its record), the script running once."""
    one = node()
    one.ok()  # the configuration check and the script load are behind us
    with redis.Redis.from_url(redis_url) as client:
        client.config_resetstat()
        one.ok(25)
        one.fail(3)
        commands = {
            name: int(values["calls"]) for name, values in client.info("commandstats").items()
        }
    # Commands a script runs count too; the script's one HMGET shows it ran once a call.
    assert commands["cmdstat_evalsha"] == commands["cmdstat_hmget"] == 28
    assert not [name for name in commands if "script" in name or name == "cmdstat_eval"]


def test_every_key_has_a_ttl(node: Callable[..., Node], redis_url: str) -> None:
    """The breaker's keys (state, window) all expire; forced open outlives an ordinary state."""
    for window in ("count", "time"):
        one = node(f"svc-{window}", window=window, failure_threshold=None, minimum_calls=3)
        one.ok()
        one.fail()
    forced = node("forced")
    forced.breaker.force_open()
    with redis.Redis.from_url(redis_url) as client:
        keys = sorted(client.keys("hazina:*"))
        assert len(keys) == 3 + 2 + 2 + 1  # configurations, states, windows, forced state
        assert all(client.pttl(key) > 0 for key in keys)
        assert client.pttl("hazina:{circuit_breaker:forced}:s") > 24 * 3600 * 1000
        assert client.pttl("hazina:{circuit_breaker:svc-count}:s") <= 3600 * 1000


def test_script_flush_mid_run_is_transparent(node: Callable[..., Node], redis_url: str) -> None:
    """After SCRIPT FLUSH the script is loaded again: no call fails, no backend error counts."""
    one = node(failure_threshold=2)
    one.ok()
    with redis.Redis.from_url(redis_url) as client:
        client.script_flush()
    one.fail(2)
    one.rejected()
    assert one.breaker.stats().backend_errors == 0


def test_configuration_mismatch_is_refused(node: Callable[..., Node]) -> None:
    """Two processes naming one breaker alike must agree on its shared configuration."""
    node(failure_threshold=3)
    with pytest.raises(hazina.ConfigurationError, match="different configuration"):
        node(failure_threshold=4)


# -- processes ----------------------------------------------------------------------------------


#: The configuration every process of the tests below gives its breaker.
SHARED: dict[str, Any] = {"failure_threshold": 1, "open_for": 30, "half_open_max_calls": 3}


#: ... and the one of the breaker whose only probe dies with its process.
SOLO: dict[str, Any] = {"failure_threshold": 1, "open_for": 30}


def _open_it(url: str, now: float, name: str = "svc") -> None:
    registry = _registry(url, FakeClock(start=now))
    breaker = registry.circuit_breaker(name, **(SHARED if name == "svc" else SOLO))

    @hazina.circuit_breaker(name, registry=registry)
    def dependency() -> None:
        raise Boom

    with contextlib.suppress(Boom):
        dependency()
    assert breaker.stats().state is OPEN


def _probe(url: str, now: float, ran: Any, go: Any, release: Any) -> None:
    registry = _registry(url, FakeClock(start=now))

    @hazina.circuit_breaker("svc", registry=registry, **SHARED)
    def dependency() -> str:
        with ran.get_lock():
            ran.value += 1
        release.wait(JOIN)
        return OK

    go.wait(JOIN)
    with contextlib.suppress(CircuitOpenError):
        dependency()


def _hold_a_probe_and_hang(url: str, now: float, holding: Any) -> None:
    registry = _registry(url, FakeClock(start=now))

    @hazina.circuit_breaker("solo", registry=registry, **SOLO)
    def dependency() -> None:
        holding.set()
        time.sleep(3600)

    dependency()


def _spawn(target: Callable[..., None], *args: Any) -> multiprocessing.process.BaseProcess:
    process = multiprocessing.get_context("fork").Process(target=target, args=args)
    process.start()
    return process


def _joined(process: multiprocessing.process.BaseProcess) -> None:
    process.join(JOIN)
    if process.is_alive():
        process.kill()
        pytest.fail("a worker process was stuck")
    assert process.exitcode == 0


def test_breaker_opened_in_one_process_rejects_in_another(
    redis_url: str, registries: Callable[..., hazina.Registry]
) -> None:
    """A breaker a worker process opened rejects here, with the time left of its open period."""
    _joined(_spawn(_open_it, redis_url, START))
    registry = registries(redis_url, FakeClock(start=START + 5))

    @hazina.circuit_breaker("svc", registry=registry, **SHARED)
    def dependency() -> str:
        return OK

    assert dependency.policy.state is OPEN
    with pytest.raises(CircuitOpenError) as caught:
        dependency()
    assert caught.value.retry_after == pytest.approx(25.0)


def test_exactly_half_open_max_calls_probes_run_fleet_wide(redis_url: str) -> None:
    """Eight processes race for the probes of a half-open breaker: exactly three run."""
    context = multiprocessing.get_context("fork")
    ran = context.Value("i", 0)
    go, release = context.Event(), context.Event()
    _joined(_spawn(_open_it, redis_url, START))
    workers = [
        context.Process(target=_probe, args=(redis_url, START + 30, ran, go, release))
        for _ in range(8)
    ]
    for worker in workers:
        worker.start()
    try:
        go.set()
        deadline = time.monotonic() + JOIN
        # The five losers return at once; the three probes wait for the release.
        while sum(worker.exitcode == 0 for worker in workers) < 5:
            assert time.monotonic() < deadline, "the rejected workers did not finish"
            time.sleep(0.02)
        assert ran.value == 3
    finally:
        release.set()
        for worker in workers:
            _joined(worker)
    assert ran.value == 3


def test_probe_of_a_dead_process_expires_with_half_open_timeout(
    redis_url: str, registries: Callable[..., hazina.Registry]
) -> None:
    """A probe whose process died holds its slot only until half_open_timeout reopens it."""
    context = multiprocessing.get_context("fork")
    holding = context.Event()
    _joined(_spawn(_open_it, redis_url, START, "solo"))
    worker = _spawn(_hold_a_probe_and_hang, redis_url, START + 30, holding)
    try:
        assert holding.wait(JOIN)
    finally:
        worker.kill()
        worker.join(JOIN)
    clock = FakeClock(start=START + 40)
    registry = registries(redis_url, clock)

    @hazina.circuit_breaker("solo", registry=registry, **SOLO)
    def dependency() -> str:
        return OK

    with pytest.raises(CircuitOpenError) as caught:
        dependency()
    assert caught.value.retry_after == pytest.approx(20.0)  # until the half-open timeout
    clock.advance(20)
    assert dependency.policy.state is OPEN  # reopened at the deadline, START + 60
    clock.advance(30)
    assert dependency() == OK


# -- faults ---------------------------------------------------------------------------------------

RETRY = 0.2  # the backend's retry_interval in the fault tests: real seconds


@pytest.fixture
def fault_node(nodes: Callable[..., Node], own_redis: RedisServer) -> Callable[..., Node]:
    """Make a node on the test's own Redis, with on_backend_error ``mode``."""

    def make(mode: str, name: str = "svc", **config: Any) -> Node:
        config.setdefault("failure_threshold", 2)
        clock = FakeClock(start=START)
        return nodes(
            own_redis.url, clock, name, retry_interval=RETRY, on_backend_error=mode, **config
        )

    return make


def _timed(action: Callable[[], object]) -> float:
    started = time.monotonic()
    with contextlib.suppress(CircuitOpenError):  # anything else escaping is a bug
        action()
    return time.monotonic() - started


def test_outcome_reaches_the_caller_when_recording_fails(
    fault_node: Callable[..., Node], own_redis: RedisServer
) -> None:
    """Redis dies while the function runs: its value or its error still reaches the caller."""
    for mode in ("local", "allow", "deny"):
        one = fault_node(mode, f"svc-{mode}")

        def dies_then_returns() -> str:
            own_redis.kill()
            return "value"

        assert one.call(dies_then_returns) == "value"
        assert one.breaker.stats().backend_errors == 1
        own_redis.start()
        time.sleep(RETRY)

        def dies_then_raises() -> str:
            own_redis.kill()
            raise Boom

        with pytest.raises(Boom):
            one.call(dies_then_raises)
        own_redis.start()
        time.sleep(RETRY)


def test_local_mode_runs_in_memory_during_an_outage(
    fault_node: Callable[..., Node], own_redis: RedisServer
) -> None:
    """With "local", the in-memory breaker opens on this process's failures while Redis is down."""
    one = fault_node("local")
    one.ok()
    own_redis.kill()
    one.fail(2)  # the first failure finds Redis dead, both count in memory
    error = one.rejected()
    assert error.retry_after == pytest.approx(30.0)
    assert one.breaker.state is OPEN
    assert one.breaker.stats().backend_errors >= 1


def test_local_state_is_dropped_when_redis_answers_again(
    fault_node: Callable[..., Node], own_redis: RedisServer
) -> None:
    """After a restart the shared state (closed, script reloaded) replaces the stand-in's."""
    one = fault_node("local")
    one.ok()
    own_redis.kill()
    one.fail(2)
    one.rejected()
    own_redis.start()
    time.sleep(RETRY)
    one.clock.advance(1.0)  # past sync_interval: the next call asks Redis
    assert one.call() == OK
    assert one.breaker.state is CLOSED
    one.fail()
    assert one.breaker.state is CLOSED  # one shared failure, not a third local one


def test_local_mode_starts_from_the_open_state_it_read(
    fault_node: Callable[..., Node], own_redis: RedisServer
) -> None:
    """An outage does not reopen the gates: the stand-in starts open for the time left."""
    one = fault_node("local", open_for=10)
    one.fail(2)
    own_redis.kill()
    one.clock.advance(4)
    assert one.rejected().retry_after == pytest.approx(6.0)  # asked Redis, in vain
    one.clock.advance(6)
    one.ok()  # a probe of the stand-in


def test_allow_mode_admits_and_records_nothing(
    fault_node: Callable[..., Node], own_redis: RedisServer
) -> None:
    """With "allow", calls run during the outage and their failures open nothing."""
    one = fault_node("allow")
    one.ok()
    own_redis.kill()
    one.fail(5)
    one.ok()
    stats = one.breaker.stats()
    assert (stats.failures, stats.rejections) == (5, 0)
    own_redis.start()
    time.sleep(RETRY)
    assert one.breaker.state is CLOSED


def test_deny_mode_rejects_until_redis_is_tried_again(
    fault_node: Callable[..., Node], own_redis: RedisServer
) -> None:
    """With "deny", calls raise CircuitOpenError with retry_after and the Redis error as cause."""
    one = fault_node("deny")
    one.ok()
    own_redis.kill()
    assert one.call() == OK  # its record failed: the outage starts here
    error = one.rejected()
    assert 0 < error.retry_after <= RETRY  # type: ignore[operator]
    assert isinstance(error.__cause__, redis.RedisError | OSError)
    own_redis.start()
    time.sleep(RETRY)
    one.ok()
    assert one.breaker.stats().rejections == 1


def test_force_open_while_redis_is_down_raises(
    own_redis: RedisServer, registries: Callable[..., hazina.Registry]
) -> None:
    """force_open() and reset() need Redis: while it is down they raise BackendUnavailable."""
    registry = registries(own_redis.url, FakeClock(start=START), retry_interval=RETRY)
    breaker = registry.circuit_breaker("svc")
    own_redis.kill()
    with pytest.raises(hazina.BackendUnavailable) as caught:
        breaker.force_open()
    assert isinstance(caught.value.__cause__, redis.RedisError | OSError)
    with pytest.raises(hazina.BackendUnavailable):
        breaker.reset()


@pytest.mark.parametrize("mode", ["local", "allow", "deny"])
def test_nothing_hangs_on_a_frozen_redis(
    mode: str, fault_node: Callable[..., Node], own_redis: RedisServer
) -> None:
    """A server that stops answering costs a call at most about the timeout, then none."""
    one = fault_node(mode)
    one.ok()
    own_redis.pause()
    try:
        durations = [_timed(lambda: one.call()) for _ in range(5)]
        durations += [_timed(lambda: one.breaker.stats())]
    finally:
        own_redis.resume()
    assert max(durations) < 1.0
    assert sum(d > 0.1 for d in durations) <= 1  # one timeout, then the backend is down
