"""The circuit breaker's contract, as behaviour: rules, windows, states, stats, events, threads.

Every scenario runs sync and async through the ``flavor`` fixture, unless it is
inherently one or the other (threads; task cancellation; ``asyncio.gather``). Time
moves only with the fake clock; real-time waits below are safety nets that turn a
regression (a deadlock, a lost wake-up) into a failure instead of a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import freezegun
import pytest
from conftest import Flavor, SteppingClock
from interrupts import fork_children, hammered, lock_is_free, signal_storm

import hazina
from hazina import CallRejected, CircuitBreakerStats, CircuitOpenError, CircuitState
from hazina import CircuitStateChanged as Changed
from hazina.testing import FakeClock

CLOSED, OPEN = CircuitState.CLOSED, CircuitState.OPEN
HALF_OPEN, FORCED_OPEN = CircuitState.HALF_OPEN, CircuitState.FORCED_OPEN

OK = "ok"
#: Real seconds a helper thread may take before the test calls it stuck.
TIMEOUT = 10.0


class Boom(Exception):
    """The dependency failed."""


class Benign(Exception):
    """An error that says nothing about the dependency's health (kept out of failure_on)."""


class Ignored(Exception):
    """An error the breakers below are told to ignore."""


class Service:
    """A dependency behind a breaker; each call returns, raises or runs what it is given."""

    def __init__(
        self, flavor: Flavor, registry: hazina.Registry, name: str = "svc", **config: Any
    ) -> None:
        self.flavor = flavor
        self.runs = 0

        def dependency(outcome: object = OK) -> object:
            self.runs += 1
            if isinstance(outcome, BaseException):
                raise outcome
            if callable(outcome):
                return outcome()
            return outcome

        self.fn = hazina.circuit_breaker(name, registry=registry, **config)(
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

    def fail(self, times: int = 1, error: type[Exception] = Boom) -> None:
        """``times`` calls that raise ``error``, which reaches the caller."""
        for _ in range(times):
            with pytest.raises(error):
                self.call(error("down"))

    def slow(self, clock: FakeClock, seconds: float, times: int = 1) -> None:
        """``times`` successful calls that each take ``seconds`` on the fake clock."""

        def take_time() -> str:
            clock.advance(seconds)
            return OK

        for _ in range(times):
            assert self.call(take_time) == OK

    def rejected(self) -> CircuitOpenError:
        """A call the breaker refuses without running the function."""
        runs = self.runs
        with pytest.raises(CircuitOpenError) as info:
            self.call()
        assert self.runs == runs, "a rejected call must not run the function"
        return info.value

    def stats(self) -> CircuitBreakerStats:
        """The breaker's stats now."""
        return self.breaker.stats()


class Held:
    """A call through the breaker, made on a helper thread, that stays in flight until released.

    The async flavor runs the call on the helper thread's own event loop, so the async
    driver's bookkeeping is the one exercised.
    """

    def __init__(self, service: Service) -> None:
        self._service = service
        self._settled = threading.Event()  # inside the function, or finished
        self._release = threading.Event()
        self._then: object = OK
        self.inside = False
        self.result: object = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _body(self) -> object:
        self.inside = True
        self._settled.set()
        if not self._release.wait(TIMEOUT):
            raise AssertionError("a held call was never released")
        if isinstance(self._then, BaseException):
            raise self._then
        return self._then

    def _run(self) -> None:
        fn = self._service.fn
        try:
            if self._service.flavor.is_async:

                async def main() -> object:
                    result: object = await fn(self._body)
                    return result

                self.result = asyncio.run(main())
            else:
                self.result = fn(self._body)
        except BaseException as error:
            self.error = error
        finally:
            self._settled.set()

    def start(self) -> Held:
        """Make the call and return once it is inside the function (admitted)."""
        self._thread.start()
        assert self._settled.wait(TIMEOUT)
        assert self.inside, f"the held call was not admitted: {self.error!r}"
        return self

    def finish(self, then: object = OK) -> object:
        """Let the call return ``then`` (or raise it, if an exception); its result."""
        self._then = then
        self._release.set()
        self._thread.join(TIMEOUT)
        assert not self._thread.is_alive()
        if self.error is not None:
            raise self.error
        return self.result

    def abandon(self) -> None:
        """Release the call whatever state the test left it in."""
        self._release.set()
        if self._thread.ident is not None:
            self._thread.join(TIMEOUT)


@pytest.fixture
def hold() -> Iterator[Callable[[Service], Held]]:
    """Start held calls; every one still held is released when the test ends."""
    started: list[Held] = []

    def start(service: Service) -> Held:
        held = Held(service)
        started.append(held)
        return held.start()

    yield start
    for held in started:
        held.abandon()


def run_block(flavor: Flavor, breaker: hazina.CircuitBreaker, body: Callable[[], object]) -> object:
    """Run ``body`` inside ``with breaker:`` (sync) or ``async with breaker:`` (async)."""
    if flavor.is_async:

        async def block() -> object:
            async with breaker:
                return body()

        return flavor.call(block)
    with breaker:
        return body()


def opened(flavor: Flavor, registry: hazina.Registry, **config: Any) -> Service:
    """A service whose breaker one failure opened at the start time (1000.0)."""
    service = Service(flavor, registry, failure_threshold=1, **config)
    service.fail()
    assert service.breaker.state == OPEN
    return service


def zero_stats(state: CircuitState = CLOSED) -> CircuitBreakerStats:
    """The stats of a breaker nothing happened to."""
    return CircuitBreakerStats(
        state=state,
        calls=0,
        successes=0,
        failures=0,
        ignored=0,
        rejections=0,
        slow_calls=0,
        failure_rate=None,
        slow_call_rate=None,
        retry_after=None,
    )


# -- closed: the success path and the consecutive-failure rule ------------------------


def test_closed_breaker_passes_calls_and_results_through(
    flavor: Flavor, registry: hazina.Registry, events: list[object]
) -> None:
    """A closed breaker runs the function, returns its result and counts a success."""
    service = Service(flavor, registry)
    assert service.call(42) == 42
    service.ok(2)
    assert service.runs == 3
    stats = service.stats()
    assert (stats.state, stats.calls, stats.successes, stats.failures) == (CLOSED, 3, 3, 0)
    assert service.breaker.state == CLOSED
    assert events == []


def test_failure_reaches_the_caller_unchanged(flavor: Flavor, registry: hazina.Registry) -> None:
    """The function's own exception object propagates through a closed breaker."""
    service = Service(flavor, registry)
    error = Boom("down")
    with pytest.raises(Boom) as info:
        service.call(error)
    assert info.value is error
    assert service.stats().failures == 1


def test_opens_after_default_five_consecutive_failures(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """Five consecutive failures (the default threshold) open the breaker, four do not."""
    service = Service(flavor, registry)
    service.fail(4)
    assert service.breaker.state == CLOSED
    service.fail()
    assert service.breaker.state == OPEN
    service.rejected()


def test_consecutive_failure_rule_ignores_the_failure_rate(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """A run of failure_threshold failures opens the breaker even when the window's rate is low."""
    service = Service(flavor, registry, failure_threshold=3)
    service.ok(20)
    service.fail(2)
    assert service.breaker.state == CLOSED
    service.fail()
    assert service.breaker.state == OPEN


def test_success_breaks_a_run_of_failures(flavor: Flavor, registry: hazina.Registry) -> None:
    """A success between failures restarts the consecutive count."""
    service = Service(flavor, registry, minimum_calls=100)
    service.fail(4)
    service.ok()
    service.fail(4)
    assert service.breaker.state == CLOSED
    service.fail()
    assert service.breaker.state == OPEN


@pytest.mark.parametrize(
    "ignore_on",
    [Ignored, (KeyError, Ignored), lambda error: isinstance(error, Ignored)],
    ids=["type", "tuple", "predicate"],
)
def test_ignored_exception_counts_as_neither_and_keeps_the_run(
    flavor: Flavor, registry: hazina.Registry, ignore_on: Any
) -> None:
    """An ignore_on exception propagates, counts only as ignored, and does not break a run."""
    service = Service(flavor, registry, minimum_calls=100, ignore_on=ignore_on)
    service.fail(2)
    service.fail(3, error=Ignored)
    service.fail(2)
    stats = service.stats()
    assert (stats.calls, stats.successes, stats.failures, stats.ignored) == (7, 0, 4, 3)
    assert stats.state == CLOSED
    service.fail()
    assert service.breaker.state == OPEN


@pytest.mark.parametrize(
    "failure_on",
    [Boom, (KeyError, Boom), lambda error: isinstance(error, Boom)],
    ids=["type", "tuple", "predicate"],
)
def test_exception_outside_failure_on_counts_as_success(
    flavor: Flavor, registry: hazina.Registry, failure_on: Any
) -> None:
    """An exception outside failure_on propagates, counts as a success and breaks the run."""
    service = Service(flavor, registry, minimum_calls=100, failure_on=failure_on)
    service.fail(4)
    service.fail(error=Benign)
    service.fail(4)
    stats = service.stats()
    assert (stats.calls, stats.successes, stats.failures, stats.ignored) == (9, 1, 8, 0)
    assert stats.state == CLOSED
    service.fail(error=Benign)
    service.fail(10, error=Benign)
    assert service.breaker.state == CLOSED
    service.fail(5)
    assert service.breaker.state == OPEN


def test_failure_threshold_none_disables_the_consecutive_rule(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """With failure_threshold=None a long run of failures below minimum_calls keeps it closed."""
    service = Service(flavor, registry, failure_threshold=None, minimum_calls=100)
    service.fail(50)
    assert service.breaker.state == CLOSED
    assert service.stats().failures == 50


# -- the failure-rate rule over a count window -----------------------------------------


def test_rate_rule_opens_once_minimum_calls_reached(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """failures / calls >= failure_rate opens it, but only once the window holds minimum_calls."""
    service = Service(flavor, registry, failure_threshold=None, minimum_calls=10)
    service.ok(5)
    service.fail(4)
    assert service.breaker.state == CLOSED
    assert service.stats().failure_rate is None
    service.fail()
    assert service.breaker.state == OPEN


def test_rate_rule_is_not_evaluated_below_minimum_calls(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """Failing every call below minimum_calls does not open it through the rate rule."""
    service = Service(flavor, registry, failure_threshold=None, minimum_calls=8, failure_rate=0.1)
    service.fail(7)
    assert service.breaker.state == CLOSED
    service.fail()
    assert service.breaker.state == OPEN


def test_rate_rule_is_not_evaluated_after_a_plain_success(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """A success that brings the window to minimum_calls does not trigger the rate rule."""
    service = Service(flavor, registry, failure_threshold=None, minimum_calls=10)
    service.fail(9)
    service.ok()
    assert service.stats().failure_rate == 0.9
    assert service.breaker.state == CLOSED
    service.fail()
    assert service.breaker.state == OPEN


def test_custom_failure_rate_threshold(flavor: Flavor, registry: hazina.Registry) -> None:
    """failure_rate is the share of failing calls that opens it (compared with >=)."""
    service = Service(
        flavor, registry, failure_threshold=None, minimum_calls=4, window_size=4, failure_rate=0.75
    )
    service.ok(2)
    service.fail(2)
    assert service.stats().failure_rate == 0.5
    assert service.breaker.state == CLOSED
    service.fail()
    assert service.breaker.state == OPEN


def test_count_window_failures_slide_out(flavor: Flavor, registry: hazina.Registry) -> None:
    """Only the last window_size calls count: failures pushed out by successes no longer weigh."""
    service = Service(flavor, registry, failure_threshold=None, window_size=10, minimum_calls=10)
    service.fail(4)
    service.ok(6)
    service.fail(4)  # 8 failures in 14 calls overall, but 4 in the last 10
    assert service.breaker.state == CLOSED
    assert service.stats().failure_rate == 0.4
    service.fail()  # the last 10: 5 successes, 5 failures
    assert service.breaker.state == OPEN


def test_count_window_successes_slide_out(flavor: Flavor, registry: hazina.Registry) -> None:
    """Old successes leave the count window too, so they stop diluting new failures."""
    service = Service(flavor, registry, failure_threshold=None, window_size=10, minimum_calls=10)
    service.ok(30)
    service.fail(4)
    assert service.breaker.state == CLOSED
    service.fail()
    assert service.breaker.state == OPEN


def test_default_count_window_is_one_hundred_calls(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """The default count window holds 100 calls: after 100 successes the 50th failure opens it."""
    service = Service(flavor, registry, failure_threshold=None)
    service.ok(100)
    service.fail(49)
    assert service.breaker.state == CLOSED
    assert service.stats().failure_rate == 0.49
    service.fail()
    assert service.breaker.state == OPEN


# -- the time window -------------------------------------------------------------------


def time_window(flavor: Flavor, registry: hazina.Registry, **config: Any) -> Service:
    """A service on a 10-second time window, judged by the rate rule alone."""
    options: dict[str, Any] = {
        "window": "time",
        "window_size": 10,
        "minimum_calls": 4,
        "failure_threshold": None,
        **config,
    }
    return Service(flavor, registry, **options)


def test_time_window_counts_recent_failures(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """Failures a few seconds old are still inside the time window and weigh in the rate."""
    service = time_window(flavor, registry)
    service.fail(3)
    clock.advance(8.5)
    service.ok()
    assert service.breaker.state == CLOSED
    service.fail()  # 4 failures in 5 calls within the last 10 s
    assert service.breaker.state == OPEN


def test_time_window_forgets_old_failures(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """Failures older than window_size seconds no longer count toward the rate."""
    service = time_window(flavor, registry)
    service.fail(3)
    clock.advance(11)
    service.ok(3)
    service.fail()  # 1 failure in 4 calls now; 4 in 7 had the old ones stayed
    assert service.breaker.state == CLOSED
    assert service.stats().failure_rate == 0.25


def test_time_window_forgets_old_successes(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """Successes older than the window stop diluting the failure rate."""
    service = time_window(flavor, registry)
    service.ok(20)
    clock.advance(11)
    service.fail(3)
    assert service.breaker.state == CLOSED
    service.fail()  # 4 of 4 within the window
    assert service.breaker.state == OPEN


def test_time_window_rate_is_read_at_read_time(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """stats().failure_rate covers the calls in the window ending now, moving with the clock."""
    service = time_window(flavor, registry)
    service.fail()
    service.ok(3)
    assert service.stats().failure_rate == 0.25
    clock.advance(5)
    service.ok(4)
    assert service.stats().failure_rate == 1 / 8
    clock.advance(5.5)  # the first four calls are out
    assert service.stats().failure_rate == 0.0
    clock.advance(5)
    assert service.stats().failure_rate is None
    stats = service.stats()
    assert (stats.calls, stats.successes, stats.failures) == (8, 7, 1)


@pytest.mark.parametrize(("elapsed", "state"), [(59.5, OPEN), (61.0, CLOSED)])
def test_time_window_defaults_to_sixty_seconds(
    flavor: Flavor,
    registry: hazina.Registry,
    clock: FakeClock,
    elapsed: float,
    state: CircuitState,
) -> None:
    """Without window_size a time window spans 60 seconds."""
    service = Service(flavor, registry, window="time", minimum_calls=4, failure_threshold=None)
    service.fail(3)
    clock.advance(elapsed)
    service.fail()
    assert service.breaker.state == state


# -- slow calls ------------------------------------------------------------------------


def slow_service(flavor: Flavor, registry: hazina.Registry, **config: Any) -> Service:
    """A service where calls of 1 s or more are slow and half of them slow opens it."""
    options: dict[str, Any] = {
        "slow_call_duration": 1.0,
        "slow_call_rate": 0.5,
        "minimum_calls": 4,
        "window_size": 10,
        "failure_threshold": None,
        **config,
    }
    return Service(flavor, registry, **options)


def test_slow_call_rate_opens(flavor: Flavor, registry: hazina.Registry, clock: FakeClock) -> None:
    """Slow successes count in slow_calls and open the breaker once their rate reaches the limit."""
    service = slow_service(flavor, registry)
    service.ok(3)
    service.slow(clock, 2.0)
    stats = service.stats()
    assert (stats.slow_calls, stats.slow_call_rate, stats.state) == (1, 0.25, CLOSED)
    service.slow(clock, 2.0)
    assert service.stats().slow_call_rate == 0.4
    assert service.breaker.state == CLOSED
    service.slow(clock, 2.0)  # 3 of 6
    stats = service.stats()
    assert (stats.state, stats.slow_calls, stats.successes, stats.failures) == (OPEN, 3, 6, 0)


def test_fast_calls_are_not_slow(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """Calls shorter than slow_call_duration are plain successes."""
    service = slow_service(flavor, registry)
    service.slow(clock, 0.5, times=10)
    stats = service.stats()
    assert (stats.slow_calls, stats.slow_call_rate, stats.state) == (0, 0.0, CLOSED)


def test_slow_rule_waits_for_minimum_calls(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """Slow calls below minimum_calls do not open the breaker, whatever their rate."""
    service = slow_service(flavor, registry)
    service.slow(clock, 5.0, times=3)
    assert service.breaker.state == CLOSED
    assert service.stats().slow_call_rate is None
    service.slow(clock, 5.0)
    assert service.breaker.state == OPEN


def test_failure_also_checks_the_slow_call_rate(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """After a failure both rate rules are checked: the slow-call rate can open it then."""
    service = slow_service(flavor, registry, failure_rate=1.0)
    service.slow(clock, 2.0, times=2)
    service.ok()
    service.fail()  # 4 calls: failures 1/4 (< 1.0), slow 2/4 (>= 0.5)
    assert service.breaker.state == OPEN


def test_slow_failures_count_as_slow_calls(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """A failure that took slow_call_duration or more is a slow call as well as a failure."""
    service = slow_service(flavor, registry, failure_rate=1.0)

    def slow_failure() -> object:
        clock.advance(2.0)
        raise Boom("timed out")

    service.ok(2)
    for _ in range(2):
        with pytest.raises(Boom):
            service.call(slow_failure)
    stats = service.stats()
    # 4 calls: failures 2/4 (< 1.0), slow 2/4 (>= 0.5): opened by the slow-call rule.
    assert (stats.slow_calls, stats.failures, stats.state) == (2, 2, OPEN)


def test_slow_call_also_checks_the_failure_rate(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """After a slow call both rate rules are checked: the failure rate can open it then."""
    service = slow_service(flavor, registry, slow_call_rate=1.0, failure_rate=0.5)
    service.fail(2)
    service.ok()
    service.slow(clock, 2.0)  # 4 calls: failures 2/4 (>= 0.5), slow 1/4
    assert service.breaker.state == OPEN


def test_slow_calls_in_a_time_window(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """The slow-call rule works over a time window, and old slow calls leave it."""
    service = slow_service(flavor, registry, window="time")
    service.slow(clock, 2.0, times=3)  # 1002, 1004, 1006
    clock.advance(11)
    service.ok(3)
    service.slow(clock, 2.0)  # 1 slow of 4 in the window; 4 of 7 had the old ones stayed
    stats = service.stats()
    assert (stats.state, stats.slow_call_rate, stats.slow_calls) == (CLOSED, 0.25, 4)
    service.slow(clock, 2.0)
    assert service.breaker.state == CLOSED
    service.slow(clock, 2.0)  # 3 of 6
    assert service.breaker.state == OPEN


# -- open --------------------------------------------------------------------------------


def test_open_breaker_rejects_without_calling(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """While open, calls raise CircuitOpenError with the name and the exact time left."""
    service = opened(flavor, registry, open_for=30)
    error = service.rejected()
    assert isinstance(error, hazina.HazinaError)
    assert (error.name, error.retry_after) == ("svc", 30.0)
    clock.advance(12.5)
    error = service.rejected()
    assert error.retry_after == 17.5
    assert service.runs == 1


def test_rejections_are_counted_apart_from_calls(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """Rejected calls count in rejections, not in calls, and stats show retry_after."""
    service = opened(flavor, registry, open_for=30)
    for _ in range(3):
        service.rejected()
    clock.advance(10)
    stats = service.stats()
    assert (stats.state, stats.calls, stats.failures, stats.rejections) == (OPEN, 1, 1, 3)
    assert stats.retry_after == 20.0


def test_default_open_for_is_thirty_seconds(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """Without open_for the breaker stays open 30 seconds."""
    service = opened(flavor, registry)
    assert service.rejected().retry_after == 30.0
    clock.advance(29.5)
    assert service.breaker.state == OPEN
    clock.advance(0.5)
    assert service.breaker.state == HALF_OPEN


def test_probe_admitted_when_retry_after_reaches_zero(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """A caller that waits exactly retry_after seconds is admitted as a probe."""
    service = opened(flavor, registry, open_for=10)
    clock.advance(4)
    wait = service.rejected().retry_after
    assert wait is not None
    clock.advance(wait)
    service.ok()
    assert service.runs == 2


# -- half-open ---------------------------------------------------------------------------


def test_reads_half_open_after_open_for(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock, events: list[object]
) -> None:
    """Once open_for has elapsed the breaker reads half_open, with no call needed."""
    service = opened(flavor, registry, open_for=10)
    clock.advance(9.5)
    assert service.breaker.state == OPEN
    clock.advance(0.5)
    assert service.breaker.state == HALF_OPEN
    stats = service.stats()
    assert (stats.state, stats.retry_after) == (HALF_OPEN, None)
    assert events == [Changed("svc", CLOSED, OPEN), Changed("svc", OPEN, HALF_OPEN)]


def test_stats_alone_notice_half_open(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """stats() computes the state at read time: an elapsed open period reads half_open."""
    service = opened(flavor, registry, open_for=10)
    clock.advance(15)
    assert service.stats().state == HALF_OPEN


def test_success_threshold_probes_close_it(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock, events: list[object]
) -> None:
    """Two successful probes (the default success_threshold) close the breaker."""
    service = opened(flavor, registry, open_for=10)
    clock.advance(10)
    service.ok()
    assert service.breaker.state == HALF_OPEN
    service.ok()
    assert service.breaker.state == CLOSED
    assert events[-2:] == [Changed("svc", OPEN, HALF_OPEN), Changed("svc", HALF_OPEN, CLOSED)]


def test_custom_success_threshold(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """success_threshold successful probes, no fewer, close the breaker."""
    service = opened(flavor, registry, open_for=10, success_threshold=4)
    clock.advance(10)
    service.ok(3)
    assert service.breaker.state == HALF_OPEN
    service.ok()
    assert service.breaker.state == CLOSED


def test_failed_probe_reopens(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock, events: list[object]
) -> None:
    """Any failed probe reopens the breaker for a fresh open_for, even after good probes."""
    service = opened(flavor, registry, open_for=10, success_threshold=3)
    clock.advance(10)
    service.ok(2)
    clock.advance(1)
    service.fail()
    assert service.breaker.state == OPEN
    assert service.rejected().retry_after == 10.0
    clock.advance(4)
    assert service.rejected().retry_after == 6.0
    assert events[-1] == CallRejected("svc", OPEN, 6.0)
    assert Changed("svc", HALF_OPEN, OPEN) in events
    # The next half-open period starts from zero successes.
    clock.advance(6)
    service.ok(2)
    assert service.breaker.state == HALF_OPEN
    service.ok()
    assert service.breaker.state == CLOSED


def test_ignored_probe_frees_its_slot_and_counts_as_neither(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """A probe raising an ignore_on exception neither closes nor reopens the breaker."""
    service = opened(flavor, registry, open_for=10, ignore_on=Ignored)
    clock.advance(10)
    service.fail(error=Ignored)
    assert service.breaker.state == HALF_OPEN
    assert service.stats().ignored == 1
    service.ok()
    assert service.breaker.state == HALF_OPEN
    service.ok()
    assert service.breaker.state == CLOSED


def test_probe_raising_outside_failure_on_is_a_success(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """A probe raising an exception outside failure_on counts as a successful probe."""
    service = opened(flavor, registry, open_for=10, failure_on=Boom)
    clock.advance(10)
    service.fail(error=Benign)
    assert service.breaker.state == HALF_OPEN
    service.ok()
    assert service.breaker.state == CLOSED


class PredicateBug(Exception):
    """A failure_on/ignore_on predicate crashed."""


@pytest.mark.parametrize("option", ["failure_on", "ignore_on"])
def test_a_raising_predicate_frees_the_probe_slot_and_counts_the_call(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock, option: str
) -> None:
    """Regression (issue 10): a failure_on/ignore_on predicate raising on a probe's error
    leaked the half-open slot (every later call was rejected) and dropped the call from
    stats; the call now counts as a failed probe, which reopens the breaker."""
    armed = False

    def predicate(error: BaseException) -> bool:
        if armed:
            raise PredicateBug("predicate crashed")
        return option == "failure_on"

    service = opened(flavor, registry, open_for=10, **{option: predicate})
    clock.advance(10)
    armed = True

    with pytest.raises(PredicateBug):
        service.call(Boom("down"))

    assert service.stats().failures == 2
    assert service.stats().calls == 2
    assert service.breaker.state == OPEN
    clock.advance(10)
    service.ok(2)
    assert service.breaker.state == CLOSED


def test_a_listener_raising_baseexception_on_half_open_gives_the_probe_slot_back(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """Regression (issue 10): a listener raising a BaseException (past the registry's guard)
    on the move to half-open left the admitted probe's slot taken for ever; the call, which
    never ran, now gives it back and counts as ignored."""
    service = opened(flavor, registry, open_for=10)
    clock.advance(10)
    interrupt = True

    def listener(event: object) -> None:
        nonlocal interrupt
        if isinstance(event, Changed) and event.new is HALF_OPEN and interrupt:
            interrupt = False
            raise KeyboardInterrupt

    registry.subscribe(listener)
    runs = service.runs

    with pytest.raises(KeyboardInterrupt):
        service.call()

    assert service.runs == runs
    assert service.stats().ignored == 1
    assert service.breaker.state == HALF_OPEN
    service.ok(2)
    assert service.breaker.state == CLOSED


def test_one_probe_in_flight_by_default(
    flavor: Flavor,
    registry: hazina.Registry,
    clock: FakeClock,
    events: list[object],
    hold: Callable[[Service], Held],
) -> None:
    """With one probe in flight, other callers are rejected with the time left to the timeout."""
    service = opened(flavor, registry, open_for=10)
    clock.advance(10)
    probe = hold(service)
    clock.advance(3)
    error = service.rejected()
    assert error.retry_after == 7.0  # half_open_timeout (= open_for) counted from the probe
    assert events[-1] == CallRejected("svc", HALF_OPEN, 7.0)
    stats = service.stats()
    assert (stats.state, stats.rejections, stats.retry_after) == (HALF_OPEN, 1, None)
    assert probe.finish() == OK
    service.ok()  # the slot is free again
    assert service.breaker.state == CLOSED


def test_half_open_max_calls_probes_at_once(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock, hold: Callable[[Service], Held]
) -> None:
    """Up to half_open_max_calls probes are in flight at once; a finished one frees its slot."""
    service = opened(flavor, registry, open_for=10, half_open_max_calls=2, success_threshold=3)
    clock.advance(10)
    first, second = hold(service), hold(service)
    clock.advance(2)
    assert service.rejected().retry_after == 8.0
    assert first.finish() == OK
    third = hold(service)
    assert service.rejected().retry_after == 8.0
    assert service.breaker.state == HALF_OPEN
    assert second.finish() == OK
    assert service.breaker.state == HALF_OPEN
    assert third.finish() == OK
    assert service.breaker.state == CLOSED
    assert service.stats().rejections == 2


def test_failed_probe_reopens_while_others_are_in_flight(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock, hold: Callable[[Service], Held]
) -> None:
    """One failed probe reopens the breaker; a sibling probe finishing later changes nothing."""
    service = opened(flavor, registry, open_for=10, half_open_max_calls=2, success_threshold=1)
    clock.advance(10)
    good, bad = hold(service), hold(service)
    with pytest.raises(Boom):
        bad.finish(Boom("still down"))
    assert service.breaker.state == OPEN
    assert good.finish() == OK
    assert service.breaker.state == OPEN
    assert service.rejected().retry_after == 10.0


def test_stuck_probe_reopens_at_half_open_timeout(
    flavor: Flavor,
    registry: hazina.Registry,
    clock: FakeClock,
    events: list[object],
    hold: Callable[[Service], Held],
) -> None:
    """A probe that never returns does not hold the breaker: half_open_timeout reopens it."""
    service = opened(flavor, registry, open_for=30, half_open_timeout=10)
    clock.advance(30)
    hold(service)
    clock.advance(9)
    assert service.rejected().retry_after == 1.0
    assert service.breaker.state == HALF_OPEN
    clock.advance(1)
    assert service.breaker.state == OPEN
    assert service.rejected().retry_after == 30.0
    assert Changed("svc", HALF_OPEN, OPEN) in events


def test_default_half_open_timeout_is_open_for(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock, hold: Callable[[Service], Held]
) -> None:
    """Without half_open_timeout a stuck probe reopens the breaker after open_for seconds."""
    service = opened(flavor, registry, open_for=20)
    clock.advance(20)
    hold(service)
    clock.advance(19.5)
    assert service.breaker.state == HALF_OPEN
    clock.advance(0.5)
    assert service.breaker.state == OPEN


def test_late_noticed_half_open_timeout_reopens_from_the_deadline(
    flavor: Flavor,
    registry: hazina.Registry,
    clock: FakeClock,
    events: list[object],
    hold: Callable[[Service], Held],
) -> None:
    """A half-open timeout noticed late starts the new open period at the deadline."""
    service = opened(flavor, registry, open_for=30, half_open_timeout=10)
    clock.advance(30)
    stuck = hold(service)  # deadline: 1040
    clock.advance(25)  # nobody looks until 1055
    assert service.rejected().retry_after == 15.0  # open 1040..1070
    assert service.stats().retry_after == 15.0
    clock.advance(15)
    assert service.breaker.state == HALF_OPEN
    # The stuck probe belongs to the timed-out period: its late success does not count.
    assert stuck.finish() == OK
    service.ok()
    assert service.breaker.state == HALF_OPEN
    service.ok()
    assert service.breaker.state == CLOSED
    assert [e for e in events if isinstance(e, Changed)] == [
        Changed("svc", CLOSED, OPEN),
        Changed("svc", OPEN, HALF_OPEN),
        Changed("svc", HALF_OPEN, OPEN),
        Changed("svc", OPEN, HALF_OPEN),
        Changed("svc", HALF_OPEN, CLOSED),
    ]


def test_very_late_noticed_timeout_passes_through_open(
    flavor: Flavor,
    registry: hazina.Registry,
    clock: FakeClock,
    events: list[object],
    hold: Callable[[Service], Held],
) -> None:
    """Noticed after deadline + open_for, a timed-out half-open period reads half_open again."""
    service = opened(flavor, registry, open_for=30, half_open_timeout=10)
    clock.advance(30)
    hold(service)
    events.clear()
    clock.advance(10 + 30 + 5)
    assert service.breaker.state == HALF_OPEN
    assert events == [Changed("svc", HALF_OPEN, OPEN), Changed("svc", OPEN, HALF_OPEN)]
    service.ok()  # the stuck probe's slot was freed
    assert service.runs == 3


def test_threshold_not_reached_in_time_reopens(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """Probes that succeed too slowly to reach success_threshold within the timeout reopen it."""
    service = opened(flavor, registry, open_for=30, half_open_timeout=10)
    clock.advance(30)
    service.ok()
    clock.advance(11)
    assert service.rejected().retry_after == 29.0  # reopened at 1040
    assert service.breaker.state == OPEN


def test_probe_finishing_after_the_timeout_does_not_count(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock, hold: Callable[[Service], Held]
) -> None:
    """A probe that succeeds after half_open_timeout cannot close the reopened breaker."""
    service = opened(flavor, registry, open_for=30, half_open_timeout=10, success_threshold=1)
    clock.advance(30)
    late = hold(service)
    clock.advance(12)
    assert late.finish() == OK
    assert service.breaker.state == OPEN
    assert service.rejected().retry_after == 28.0


def test_cancelled_probe_frees_its_slot(
    registry: hazina.Registry, clock: FakeClock, events: list[object]
) -> None:
    """Cancelling an async probe counts as neither outcome and frees its half-open slot."""

    async def scenario() -> None:
        entered, gate = asyncio.Event(), asyncio.Event()

        @hazina.circuit_breaker("svc", registry=registry, failure_threshold=1, open_for=10)
        async def dependency(outcome: str) -> str:
            if outcome == "fail":
                raise Boom("down")
            if outcome == "hang":
                entered.set()
                await gate.wait()
            return OK

        with pytest.raises(Boom):
            await dependency("fail")
        clock.advance(10)
        probe = asyncio.create_task(dependency("hang"))
        await asyncio.wait_for(entered.wait(), TIMEOUT)
        with pytest.raises(CircuitOpenError):
            await dependency("ok")
        probe.cancel()
        with pytest.raises(asyncio.CancelledError):
            await probe
        breaker = dependency.policy
        stats = breaker.stats()
        assert (stats.state, stats.ignored, stats.calls, stats.rejections) == (HALF_OPEN, 1, 2, 1)
        assert await dependency("ok") == OK  # admitted: the slot is free
        assert breaker.state == HALF_OPEN  # the cancelled probe was no success
        assert await dependency("ok") == OK
        assert breaker.state == CLOSED

    asyncio.run(scenario())
    assert Changed("svc", HALF_OPEN, OPEN) not in events


def test_cancelled_call_does_not_break_a_run(registry: hazina.Registry) -> None:
    """A cancelled call while closed counts as ignored and does not break a run of failures."""

    async def scenario() -> None:
        entered = asyncio.Event()

        @hazina.circuit_breaker("svc", registry=registry, minimum_calls=100)
        async def dependency(hang: bool) -> None:
            if hang:
                entered.set()
                await asyncio.Event().wait()
            raise Boom("down")

        for _ in range(4):
            with pytest.raises(Boom):
                await dependency(False)
        task = asyncio.create_task(dependency(True))
        await asyncio.wait_for(entered.wait(), TIMEOUT)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        stats = dependency.policy.stats()
        assert (stats.state, stats.calls, stats.failures, stats.ignored) == (CLOSED, 5, 4, 1)
        with pytest.raises(Boom):
            await dependency(False)
        assert dependency.policy.state == OPEN

    asyncio.run(scenario())


def test_cancelled_async_block_counts_as_ignored(registry: hazina.Registry) -> None:
    """A task cancelled inside `async with breaker:` counts as ignored, not as a failure."""
    breaker = registry.circuit_breaker("svc", failure_threshold=1)

    async def scenario() -> None:
        entered = asyncio.Event()

        async def block() -> None:
            async with breaker:
                entered.set()
                await asyncio.Event().wait()

        task = asyncio.create_task(block())
        await asyncio.wait_for(entered.wait(), TIMEOUT)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    stats = breaker.stats()
    assert (stats.state, stats.calls, stats.failures, stats.ignored) == (CLOSED, 1, 0, 1)


def test_reset_does_not_reuse_half_open_period_numbers(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock, hold: Callable[[Service], Held]
) -> None:
    """Regression: a probe admitted before reset() neither frees a slot nor counts later.

    reset() used to restart half-open period numbers at 0, so such a probe returning in a
    later half-open period freed a slot it never held and its success counted.
    """
    service = opened(flavor, registry, open_for=10)
    clock.advance(10)
    stale = hold(service)
    service.breaker.reset()
    service.fail()
    clock.advance(10)
    assert service.breaker.state == HALF_OPEN
    assert stale.finish() == OK
    fresh = hold(service)
    service.rejected()  # half_open_max_calls=1: one probe in flight already
    assert fresh.finish() == OK
    assert service.breaker.state == HALF_OPEN  # one real successful probe of two


# -- forced open and reset ---------------------------------------------------------------


def test_force_open_rejects_without_retry_after(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock, events: list[object]
) -> None:
    """A forced-open breaker rejects with retry_after None and stays so however long it waits."""
    service = Service(flavor, registry, open_for=10)
    service.breaker.force_open()
    error = service.rejected()
    assert (error.name, error.retry_after) == ("svc", None)
    clock.advance(3600)
    assert service.breaker.state == FORCED_OPEN
    service.rejected()
    stats = service.stats()
    assert (stats.state, stats.retry_after, stats.rejections, stats.calls) == (
        FORCED_OPEN,
        None,
        2,
        0,
    )
    assert events == [
        Changed("svc", CLOSED, FORCED_OPEN),
        CallRejected("svc", FORCED_OPEN, None),
        CallRejected("svc", FORCED_OPEN, None),
    ]


def test_force_open_from_open_and_half_open(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """force_open() overrides an open or half-open breaker until reset()."""
    service = opened(flavor, registry, open_for=10)
    service.breaker.force_open()
    clock.advance(10)
    assert service.breaker.state == FORCED_OPEN
    service.breaker.reset()
    service.fail()
    clock.advance(10)
    assert service.breaker.state == HALF_OPEN
    service.breaker.force_open()
    assert service.rejected().retry_after is None


def test_reset_closes_and_zeroes_stats(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock, events: list[object]
) -> None:
    """reset() closes the breaker and puts every counter and rate back to zero or None."""
    service = Service(flavor, registry, ignore_on=Ignored)
    service.ok(3)
    service.fail(error=Ignored)
    service.fail(5)
    service.rejected()
    service.breaker.reset()
    assert service.stats() == zero_stats()
    assert events[-1] == Changed("svc", OPEN, CLOSED)
    service.ok()
    assert service.stats().calls == 1


def test_reset_starts_a_fresh_run_and_window(flavor: Flavor, registry: hazina.Registry) -> None:
    """Failures recorded before reset() count toward neither rule afterwards."""
    service = Service(flavor, registry, minimum_calls=10, window_size=10)
    service.fail(4)
    service.ok(5)
    service.breaker.reset()
    service.fail(4)
    assert service.breaker.state == CLOSED
    assert service.stats().failure_rate is None


def test_reset_of_forced_open_breaker(
    flavor: Flavor, registry: hazina.Registry, events: list[object]
) -> None:
    """reset() of a forced-open breaker admits calls again and reports the change."""
    service = Service(flavor, registry)
    service.breaker.force_open()
    service.rejected()
    service.breaker.reset()
    service.ok()
    assert service.breaker.state == CLOSED
    assert events[-1] == Changed("svc", FORCED_OPEN, CLOSED)


# -- the context-manager form ------------------------------------------------------------


def test_block_records_success_and_failure(flavor: Flavor, registry: hazina.Registry) -> None:
    """`with breaker:` / `async with breaker:` count a block's success or failure."""
    breaker = registry.circuit_breaker("svc")
    assert run_block(flavor, breaker, lambda: OK) is OK

    def fail() -> object:
        raise Boom("down")

    with pytest.raises(Boom):
        run_block(flavor, breaker, fail)
    stats = breaker.stats()
    assert (stats.calls, stats.successes, stats.failures) == (2, 1, 1)


def test_block_opens_and_is_rejected(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """Failing blocks open the breaker; then entering the block raises before the body runs."""
    breaker = registry.circuit_breaker("svc", open_for=10)
    ran: list[str] = []

    def fail() -> object:
        ran.append("fail")
        raise Boom("down")

    for _ in range(5):
        with pytest.raises(Boom):
            run_block(flavor, breaker, fail)
    assert breaker.state == OPEN
    with pytest.raises(CircuitOpenError) as info:
        run_block(flavor, breaker, lambda: ran.append("rejected"))
    assert (info.value.name, info.value.retry_after) == ("svc", 10.0)
    assert ran == ["fail"] * 5
    assert breaker.stats().rejections == 1


def test_block_probes_close_it(flavor: Flavor, registry: hazina.Registry, clock: FakeClock) -> None:
    """Blocks entered while half-open are probes: success_threshold of them close it."""
    breaker = registry.circuit_breaker("svc", failure_threshold=1, open_for=10)

    def fail() -> object:
        raise Boom("down")

    with pytest.raises(Boom):
        run_block(flavor, breaker, fail)
    clock.advance(10)
    run_block(flavor, breaker, lambda: OK)
    assert breaker.state == HALF_OPEN
    run_block(flavor, breaker, lambda: OK)
    assert breaker.state == CLOSED


def test_block_probe_in_flight_rejects_others(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """While a block holds the only half-open slot, another block is rejected."""
    breaker = registry.circuit_breaker("svc", failure_threshold=1, open_for=10)
    with pytest.raises(Boom), breaker:
        raise Boom("down")
    clock.advance(10)
    with breaker:  # the probe, in flight for the rest of this block
        clock.advance(4)
        with pytest.raises(CircuitOpenError) as info:
            run_block(flavor, breaker, lambda: OK)
        assert info.value.retry_after == 6.0
    assert breaker.state == HALF_OPEN
    assert breaker.stats().rejections == 1


def test_block_outcome_classes(flavor: Flavor, registry: hazina.Registry) -> None:
    """Blocks honour ignore_on and failure_on like decorated calls."""
    breaker = registry.circuit_breaker("svc", failure_on=Boom, ignore_on=Ignored)
    for error in (Ignored, Benign, Boom):

        def raise_it(error: type[Exception] = error) -> object:
            raise error("x")

        with pytest.raises(error):
            run_block(flavor, breaker, raise_it)
    stats = breaker.stats()
    assert (stats.calls, stats.successes, stats.failures, stats.ignored) == (3, 1, 1, 1)


def test_block_duration_makes_slow_calls(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """A block that takes longer than slow_call_duration counts as a slow call."""
    breaker = registry.circuit_breaker("svc", slow_call_duration=1.0, minimum_calls=2)
    run_block(flavor, breaker, lambda: clock.advance(0.5))
    run_block(flavor, breaker, lambda: clock.advance(3))
    stats = breaker.stats()
    assert (stats.calls, stats.slow_calls, stats.slow_call_rate) == (2, 1, 0.5)


# -- stats and snapshots -----------------------------------------------------------------


def test_stats_fields_are_the_documented_ones(registry: hazina.Registry) -> None:
    """Breaker stats are a frozen record with exactly the fields DESIGN lists."""
    stats = registry.circuit_breaker("svc").stats()
    assert {field.name for field in attrs.fields(CircuitBreakerStats)} == {
        "state",
        "calls",
        "successes",
        "failures",
        "ignored",
        "rejections",
        "slow_calls",
        "failure_rate",
        "slow_call_rate",
        "retry_after",
        "backend_errors",
        "open_keys",
    }
    assert stats == zero_stats()
    assert isinstance(stats.state, str)
    assert stats.state == "closed"
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        stats.calls = 1  # type: ignore[misc]


def test_stats_add_up(flavor: Flavor, registry: hazina.Registry) -> None:
    """calls = successes + failures + ignored; rejections stay separate."""
    service = Service(flavor, registry, failure_on=Boom, ignore_on=Ignored, minimum_calls=5)
    service.ok(3)
    service.fail(error=Benign)
    service.fail(error=Ignored)
    service.fail(2)
    stats = service.stats()
    assert (stats.calls, stats.successes, stats.failures, stats.ignored) == (7, 4, 2, 1)
    assert stats.calls == stats.successes + stats.failures + stats.ignored
    assert stats.failure_rate == 2 / 6  # ignored calls are not in the window
    service.fail(2)  # 4 failures in 8 calls
    service.rejected()
    stats = service.stats()
    assert (stats.calls, stats.failures, stats.rejections, stats.state) == (9, 4, 1, OPEN)


def test_rates_are_none_below_minimum_calls(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """failure_rate and slow_call_rate stay None until the window holds minimum_calls."""
    service = slow_service(flavor, registry, minimum_calls=4)
    service.fail()
    service.slow(clock, 2.0)
    service.ok()
    stats = service.stats()
    assert (stats.failure_rate, stats.slow_call_rate) == (None, None)
    service.ok()
    stats = service.stats()
    assert (stats.failure_rate, stats.slow_call_rate) == (0.25, 0.25)


def test_retry_after_is_none_unless_open(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """stats().retry_after is a number while open and None when closed, half-open or forced."""
    service = Service(flavor, registry, failure_threshold=1, open_for=10)
    assert service.stats().retry_after is None
    service.fail()
    clock.advance(2.5)
    assert service.stats().retry_after == 7.5
    clock.advance(7.5)
    assert service.stats().retry_after is None
    service.breaker.force_open()
    assert service.stats().retry_after is None


def test_snapshot_is_plain_data(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """registry.snapshot() reports the breaker as plain JSON-ready values."""
    service = Service(flavor, registry, open_for=30)
    service.ok()
    service.fail(5)
    service.rejected()
    clock.advance(5)
    snapshot = registry.snapshot()["circuit_breaker"]["svc"]
    assert snapshot == {
        "state": "open",
        "calls": 6,
        "successes": 1,
        "failures": 5,
        "ignored": 0,
        "rejections": 1,
        "slow_calls": 0,
        "failure_rate": None,
        "slow_call_rate": None,
        "retry_after": 25.0,
        "backend_errors": 0,
        "open_keys": 0,
    }
    assert type(snapshot["state"]) is str
    assert json.loads(json.dumps(snapshot)) == snapshot
    assert registry.stats()["circuit_breaker"]["svc"] == service.stats()


# -- events ----------------------------------------------------------------------------------


def test_events_over_a_full_cycle(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock, events: list[object]
) -> None:
    """Every transition emits CircuitStateChanged and every rejection CallRejected, in order."""
    service = Service(flavor, registry, open_for=30)
    service.fail(5)
    assert events == [Changed("svc", CLOSED, OPEN)]
    clock.advance(10)
    service.rejected()
    assert events[-1] == CallRejected("svc", OPEN, 20.0)
    clock.advance(20)
    service.ok()
    service.ok()
    assert events == [
        Changed("svc", CLOSED, OPEN),
        CallRejected("svc", OPEN, 20.0),
        Changed("svc", OPEN, HALF_OPEN),
        Changed("svc", HALF_OPEN, CLOSED),
    ]
    assert all(type(event.old) is CircuitState for event in events if isinstance(event, Changed))


def test_events_are_delivered_before_the_call_returns(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """The opening event reaches listeners before the failing call's error reaches the caller."""
    service = Service(flavor, registry, failure_threshold=1)
    seen: list[object] = []
    registry.subscribe(seen.append)
    with pytest.raises(Boom):
        service.call(Boom("down"))
    assert seen == [Changed("svc", CLOSED, OPEN)]


def test_raising_listener_is_logged_and_harmless(
    flavor: Flavor,
    registry: hazina.Registry,
    clock: FakeClock,
    events: list[object],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A listener that raises is logged; the call, the breaker and later listeners carry on."""

    def broken(event: object) -> None:
        raise RuntimeError("listener bug")

    registry.subscribe(broken)
    after: list[object] = []
    registry.subscribe(after.append)
    service = Service(flavor, registry, failure_threshold=1, open_for=10)
    with caplog.at_level(logging.ERROR, logger="hazina"):
        service.fail()  # Boom, not RuntimeError
        error = service.rejected()  # CircuitOpenError, not RuntimeError
    assert error.retry_after == 10.0
    assert service.breaker.state == OPEN
    assert after == events == [Changed("svc", CLOSED, OPEN), CallRejected("svc", OPEN, 10.0)]
    logged = [record for record in caplog.records if record.name == "hazina"]
    assert len(logged) == 2
    assert all(
        record.exc_info and isinstance(record.exc_info[1], RuntimeError) for record in logged
    )


def test_listener_may_read_the_breaker(registry: hazina.Registry) -> None:
    """Listeners run outside the breaker's lock: one may read state and stats without deadlock."""
    seen: list[tuple[object, CircuitState, int]] = []
    breaker = registry.circuit_breaker("svc", failure_threshold=1)

    def reader(event: object) -> None:
        seen.append((event, breaker.state, breaker.stats().rejections))

    registry.subscribe(reader)

    @hazina.circuit_breaker("svc", registry=registry)
    def dependency() -> None:
        raise Boom("down")

    def scenario(_: int) -> None:
        with pytest.raises(Boom):
            dependency()
        with pytest.raises(CircuitOpenError):
            dependency()

    # On its own thread, so that a deadlock fails the test instead of hanging it.
    run_threads(1, scenario)
    assert seen == [
        (Changed("svc", CLOSED, OPEN), OPEN, 0),
        (CallRejected("svc", OPEN, 30.0), OPEN, 1),
    ]


# -- concurrency ---------------------------------------------------------------------------


@pytest.fixture
def busy_switching() -> Iterator[None]:
    """Switch threads far more often than usual, to shake out lost updates."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(previous)


def run_threads(count: int, work: Callable[[int], None]) -> None:
    """Run ``work(i)`` on ``count`` threads started together; re-raise any thread's error."""
    start = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            start.wait(TIMEOUT)
            work(i)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT * 6)
    assert not any(thread.is_alive() for thread in threads), "threads did not finish"
    if errors:
        raise errors[0]


CONFIGS = [
    pytest.param({}, id="count-window"),
    pytest.param({"window": "time"}, id="time-window"),
    pytest.param({"slow_call_duration": 60.0}, id="slow-rule"),
]


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.usefixtures("busy_switching")
def test_threads_count_every_success(registry: hazina.Registry, config: dict[str, Any]) -> None:
    """8 threads x 10 000 successful calls through one breaker count exactly 80 000."""

    @hazina.circuit_breaker("svc", registry=registry, **config)
    def dependency() -> int:
        return 1

    def work(_: int) -> None:
        for _ in range(10_000):
            dependency()

    run_threads(8, work)
    stats = dependency.policy.stats()
    assert (stats.calls, stats.successes, stats.failures, stats.state) == (
        80_000,
        80_000,
        0,
        CLOSED,
    )


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.usefixtures("busy_switching")
def test_threads_count_mixed_outcomes(
    registry: hazina.Registry, clock: FakeClock, config: dict[str, Any]
) -> None:
    """Threads alternating successes, failures and ignored errors are all counted exactly."""

    @hazina.circuit_breaker(
        "svc",
        registry=registry,
        failure_threshold=None,
        failure_rate=1.0,
        ignore_on=Ignored,
        **config,
    )
    def dependency(i: int) -> int:
        if i % 3 == 1:
            raise Boom("down")
        if i % 3 == 2:
            raise Ignored("meh")
        return i

    def work(thread: int) -> None:
        for i in range(3_000):
            if thread == 0 and i % 100 == 0:
                clock.advance(0.25)  # cross bucket boundaries while others run
            with contextlib.suppress(Boom, Ignored):
                dependency(i)

    run_threads(8, work)
    stats = dependency.policy.stats()
    assert stats.state == CLOSED
    assert (stats.calls, stats.successes, stats.failures, stats.ignored) == (
        24_000,
        8_000,
        8_000,
        8_000,
    )
    assert stats.rejections == 0


def test_tasks_count_exactly(registry: hazina.Registry) -> None:
    """1000 interleaved asyncio tasks through one breaker are all counted exactly."""

    @hazina.circuit_breaker("svc", registry=registry, failure_threshold=None, failure_rate=1.0)
    async def dependency(i: int) -> int:
        for _ in range(i % 3):
            await asyncio.sleep(0)  # interleave completions with other tasks
        if i % 2:
            raise Boom("down")
        return i

    async def scenario() -> list[object]:
        return await asyncio.gather(*(dependency(i) for i in range(1000)), return_exceptions=True)

    results = asyncio.run(scenario())
    assert sum(isinstance(result, Boom) for result in results) == 500
    stats = dependency.policy.stats()
    assert (stats.calls, stats.successes, stats.failures, stats.state) == (1000, 500, 500, CLOSED)


def test_tasks_respect_half_open_max_calls(registry: hazina.Registry, clock: FakeClock) -> None:
    """Concurrent tasks against a half-open breaker: exactly half_open_max_calls get in."""

    async def scenario() -> None:
        gate = asyncio.Event()

        @hazina.circuit_breaker(
            "svc",
            registry=registry,
            failure_threshold=1,
            open_for=10,
            half_open_max_calls=3,
            success_threshold=3,
        )
        async def dependency(fail: bool) -> str:
            if fail:
                raise Boom("down")
            await gate.wait()
            return OK

        with pytest.raises(Boom):
            await dependency(True)
        clock.advance(10)
        tasks = [asyncio.create_task(dependency(False)) for _ in range(50)]
        for _ in range(5):
            await asyncio.sleep(0)
        gate.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert results.count(OK) == 3
        assert sum(isinstance(result, CircuitOpenError) for result in results) == 47
        assert dependency.policy.state == CLOSED
        assert dependency.policy.stats().rejections == 47

    asyncio.run(scenario())


@pytest.mark.parametrize("form", ["count-window", "time-window", "slow-rule", "block", "probes"])
def test_no_lock_is_held_while_the_function_runs(
    registry: hazina.Registry, clock: FakeClock, form: str
) -> None:
    """8 threads can all be inside the breaker at once (each waits on a shared barrier)."""
    barrier = threading.Barrier(8)
    configs: dict[str, dict[str, Any]] = {
        "count-window": {},
        "time-window": {"window": "time"},
        "slow-rule": {"slow_call_duration": 60.0},
        "block": {},
        "probes": {"failure_threshold": 1, "half_open_max_calls": 8, "success_threshold": 8},
    }
    breaker = registry.circuit_breaker("svc", **configs[form])

    @hazina.circuit_breaker("svc", registry=registry)
    def meet() -> int:
        return barrier.wait(TIMEOUT)

    if form == "probes":
        with pytest.raises(Boom), breaker:
            raise Boom("down")
        clock.advance(30)

    def work(_: int) -> None:
        if form == "block":
            with breaker:
                barrier.wait(TIMEOUT)
        else:
            meet()

    run_threads(8, work)
    assert breaker.state == CLOSED
    assert breaker.stats().successes == 8


def test_no_lock_is_held_across_an_await(registry: hazina.Registry, clock: FakeClock) -> None:
    """8 async probes can all be suspended inside a half-open breaker at once."""
    barrier = asyncio.Barrier(8)

    @hazina.circuit_breaker(
        "svc", registry=registry, failure_threshold=1, half_open_max_calls=8, success_threshold=8
    )
    async def meet(fail: bool) -> None:
        if fail:
            raise Boom("down")
        await barrier.wait()

    async def scenario() -> None:
        with pytest.raises(Boom):
            await meet(True)
        clock.advance(30)
        await asyncio.wait_for(asyncio.gather(*(meet(False) for _ in range(8))), TIMEOUT)

    # On its own thread, so that a thread lock held across an await fails the test, not hangs it.
    run_threads(1, lambda _: asyncio.run(scenario()))
    assert meet.policy.state == CLOSED
    assert meet.policy.stats().successes == 8


# -- the clock stepping back -------------------------------------------------------------


def test_an_open_breaker_is_not_stuck_when_the_clock_steps_back(
    flavor: Flavor, stepping_clock: SteppingClock
) -> None:
    """Regression (issue 10): a clock stepping back (freezegun's freeze_time ending) left an
    open breaker open for as long as the step; a step back now counts as no time passing,
    so the breaker opens for exactly what was left of open_for."""
    service = opened(flavor, hazina.Registry(clock=stepping_clock), open_for=30)
    stepping_clock.advance(10)
    assert service.rejected().retry_after == 20.0

    stepping_clock.step_back(1e9)

    assert service.rejected().retry_after == 20.0
    stepping_clock.advance(20)
    service.ok(2)
    assert service.breaker.state == CLOSED


def test_a_half_open_deadline_survives_the_clock_stepping_back(
    flavor: Flavor, stepping_clock: SteppingClock, hold: Callable[[Service], Held]
) -> None:
    """A probe's half-open timeout keeps what was left of it across a step back."""
    service = opened(flavor, hazina.Registry(clock=stepping_clock), open_for=10)
    stepping_clock.advance(10)
    probe = hold(service)
    stepping_clock.advance(4)
    assert service.rejected().retry_after == 6.0

    stepping_clock.step_back(1e6)

    assert service.rejected().retry_after == 6.0
    stepping_clock.advance(6)
    assert service.breaker.state == OPEN
    probe.finish()


def test_a_time_window_keeps_its_failures_across_the_clock_stepping_back(
    flavor: Flavor, stepping_clock: SteppingClock
) -> None:
    """A time window's recent calls stay recent after a step back, and still slide out."""
    service = Service(
        flavor,
        hazina.Registry(clock=stepping_clock),
        window="time",
        window_size=10,
        minimum_calls=4,
        failure_threshold=None,
    )
    service.fail(2)
    service.ok()

    stepping_clock.step_back(1e6)
    service.ok()

    assert service.stats().failure_rate == 0.5
    stepping_clock.advance(11)
    service.ok()
    assert service.stats().failure_rate is None


def test_leaving_freeze_time_leaves_no_breaker_open_for_decades(flavor: Flavor) -> None:
    """Regression (issue 10): a breaker opened inside freezegun's freeze_time, on the real
    clock, stayed open for decades after the block (the monotonic clock stepped back from
    2024 to the machine's uptime); now it waits out only what is left of open_for."""
    registry = hazina.Registry()
    with freezegun.freeze_time("2024-01-01"):
        service = opened(flavor, registry, open_for=30)
        assert service.rejected().retry_after == 30.0

    retry_after = service.rejected().retry_after

    assert retry_after is not None
    assert retry_after == pytest.approx(30.0, abs=1e-3)  # float steps at 2024 scale


# -- signals and fork ------------------------------------------------------------------------


def test_exceptions_from_a_signal_storm_never_leave_the_breaker_locked(
    registry: hazina.Registry, clock: FakeClock
) -> None:
    """Thousands of exceptions from a signal handler, landing anywhere in calls that
    open, probe and close the breaker, leave its lock free and its counts in step."""

    @hazina.circuit_breaker(
        "storm", registry=registry, failure_threshold=3, open_for=1, half_open_timeout=1
    )
    def dependency(fail: bool) -> int:
        if fail:
            raise ValueError("down")
        return 1

    breaker = dependency.policy

    def call(i: int) -> None:
        if i % 7 == 0:
            clock.advance(0.5)
        with contextlib.suppress(ValueError, CircuitOpenError):
            dependency(i % 5 < 2)
        breaker.stats()

    signal_storm(call)

    assert lock_is_free(breaker._lock)
    stats = breaker.stats()
    assert stats.calls == stats.successes + stats.failures + stats.ignored
    clock.advance(2)  # any probe slot an exception kept is given back by the timeout
    assert dependency(False) == 1
    breaker.reset()
    assert [dependency(False) for _ in range(3)] == [1, 1, 1]
    assert breaker.stats().successes == 3


def test_a_child_forked_while_threads_use_the_breaker_can_use_it(
    registry: hazina.Registry,
) -> None:
    """Regression (issue 10): a child forked while another thread held the breaker's lock
    hung on its first call; now its copy starts with the lock free."""

    # ValueError is not a failure: recorded under the lock, it never opens the breaker.
    @hazina.circuit_breaker("forked", registry=registry, failure_on=KeyError)
    def dependency(fail: bool) -> int:
        if fail:
            raise ValueError("down")
        return 1

    def work() -> None:
        with contextlib.suppress(ValueError):
            dependency(True)
        dependency.policy.stats()

    def use() -> None:
        assert dependency(False) == 1
        dependency.policy.stats()

    with hammered(work):
        assert fork_children(use) == []
