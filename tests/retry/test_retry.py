"""Retry on its own: attempts, backoff and jitter, conditions, give-ups, events, state.

Every behavioural scenario runs sync and async through the ``flavor`` fixture; time
only moves on the fake clock (an operation "takes" time by advancing it, a retry wait
is recorded in ``clock.sleeps``).
"""

from __future__ import annotations

import asyncio
import inspect
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pytest

import hazina
from hazina.testing import FakeClock, instant_waits

if TYPE_CHECKING:
    from conftest import Flavor

Retried = hazina.Decorated[..., Any, hazina.Retry]


class HTTPError(Exception):
    """An error with an HTTP status, for predicate conditions."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class OtherStatusError(Exception):
    """An error that has a status but is not an :class:`HTTPError`."""

    def __init__(self, status: int) -> None:
        super().__init__(f"status {status}")
        self.status = status


class Throttled(Exception):
    """An error that asks the caller to come back after ``retry_after`` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"come back in {retry_after}s")
        self.retry_after = retry_after


class Flaky:
    """A dependency that fails its first ``failures`` calls, each with a fresh error.

    Every call takes ``duration`` seconds of fake time when a clock is given.
    """

    def __init__(
        self,
        failures: int,
        *,
        make_error: Callable[[int], BaseException] | None = None,
        value: object = "ok",
        clock: FakeClock | None = None,
        duration: float = 0.0,
    ) -> None:
        self.failures = failures
        self.make_error = make_error or (lambda n: ConnectionError(f"down (call {n})"))
        self.value = value
        self.clock = clock
        self.duration = duration
        self.calls = 0
        self.errors: list[BaseException] = []

    def __call__(self, *args: object, **kwargs: object) -> object:
        self.calls += 1
        if self.clock is not None and self.duration:
            self.clock.advance(self.duration)
        if self.calls <= self.failures:
            error = self.make_error(self.calls)
            self.errors.append(error)
            raise error
        return self.value


def retrying(
    flavor: Flavor,
    registry: hazina.Registry,
    body: Callable[..., Any],
    name: str = "flaky",
    **config: Any,
) -> Retried:
    """``body`` as a sync or async operation under the retry policy ``name``."""
    decorate: Any = hazina.retry(name, registry=registry, **config)
    retried: Retried = decorate(flavor.define(body))
    return retried


def stats(fn: Retried) -> hazina.RetryStats:
    """The retry stats of a decorated function."""
    return fn.policy.stats()


def expected_stats(
    *,
    calls: int,
    attempts: int,
    successes: int = 0,
    successes_after_retry: int = 0,
    give_ups: int = 0,
) -> hazina.RetryStats:
    """A stats snapshot; ``retries`` is derived as attempts beyond the first of each call."""
    return hazina.RetryStats(
        calls=calls,
        attempts=attempts,
        retries=attempts - calls,
        successes=successes,
        successes_after_retry=successes_after_retry,
        give_ups=give_ups,
    )


def scheduled(events: list[object]) -> list[hazina.RetryScheduled]:
    """The ``RetryScheduled`` events among ``events``."""
    return [event for event in events if isinstance(event, hazina.RetryScheduled)]


def gave_up(events: list[object]) -> list[hazina.RetryGaveUp]:
    """The ``RetryGaveUp`` events among ``events``."""
    return [event for event in events if isinstance(event, hazina.RetryGaveUp)]


def assert_give_up_note(error: BaseException, *, name: str, attempts: int, elapsed: float) -> None:
    """``error`` carries exactly one note naming the policy, the attempts and the elapsed time."""
    notes = getattr(error, "__notes__", [])
    assert len(notes) == 1, notes
    note = notes[0]
    assert name in note
    assert re.search(rf"\b{attempts} attempts?\b|\battempts?\W+{attempts}\b", note), note
    seconds = re.findall(r"(\d+(?:\.\d+)?)\s*(?:s|secs?|seconds?)\b", note)
    assert seconds, note
    assert float(seconds[-1]) == pytest.approx(elapsed, abs=1e-3), note


def collect_waits(
    flavor: Flavor,
    fn: Retried,
    events: list[object],
    calls: int,
) -> list[list[float]]:
    """Call an always-failing ``fn`` ``calls`` times; the scheduled waits of each call."""
    per_call: list[list[float]] = []
    for _ in range(calls):
        start = len(events)
        with pytest.raises(ConnectionError):
            flavor.call(fn)
        per_call.append([event.wait for event in scheduled(events[start:])])
    return per_call


@pytest.fixture(autouse=True)
def real_waits() -> Iterator[None]:
    """Run each test with real (clock) waits, and put the switch back as it was afterwards."""
    with instant_waits(False):  # on exit, restores the setting from before the test
        yield


# -- attempts and outcomes -----------------------------------------------------------------


def test_success_at_the_first_attempt_calls_once_and_never_waits(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock, events: list[object]
) -> None:
    """A call that succeeds at once makes one attempt, waits for nothing and emits nothing."""
    flaky = Flaky(0, value=42)
    fn = retrying(flavor, registry, flaky)

    assert flavor.call(fn) == 42

    assert flaky.calls == 1
    assert clock.sleeps == []
    assert clock.now() == 1000.0
    assert events == []
    assert stats(fn) == expected_stats(calls=1, attempts=1, successes=1)


def test_a_failing_call_is_retried_until_it_succeeds(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """Two failures then a success, with attempts=3, returns the value after two retries."""
    flaky = Flaky(2, value="finally")
    fn = retrying(flavor, registry, flaky, attempts=3)

    assert flavor.call(fn) == "finally"

    assert flaky.calls == 3
    assert len(clock.sleeps) == 2
    assert stats(fn) == expected_stats(calls=1, attempts=3, successes=1, successes_after_retry=1)


def test_arguments_reach_every_attempt(flavor: Flavor, registry: hazina.Registry) -> None:
    """Each attempt receives the call's positional and keyword arguments unchanged."""
    seen: list[tuple[tuple[object, ...], dict[str, object]]] = []

    def body(*args: object, **kwargs: object) -> str:
        seen.append((args, kwargs))
        if len(seen) < 3:
            raise ConnectionError("down")
        return "ok"

    fn = retrying(flavor, registry, body, attempts=3)

    assert flavor.call(fn, 1, "two", key="value") == "ok"
    assert seen == [((1, "two"), {"key": "value"})] * 3


def test_attempts_counts_the_first_attempt(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """``attempts=4`` means four calls in all: the first and three retries."""
    flaky = Flaky(10)
    fn = retrying(flavor, registry, flaky, attempts=4)

    with pytest.raises(ConnectionError):
        flavor.call(fn)

    assert flaky.calls == 4
    assert len(clock.sleeps) == 3


def test_default_attempts_is_three(flavor: Flavor, registry: hazina.Registry) -> None:
    """Without ``attempts`` a failing call is tried three times in all."""
    flaky = Flaky(10)
    fn = retrying(flavor, registry, flaky)

    with pytest.raises(ConnectionError):
        flavor.call(fn)

    assert flaky.calls == 3


def test_giving_up_reraises_the_last_error_itself_with_a_note(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """Out of attempts, the last error object itself (no wrapper) is re-raised with a note."""
    flaky = Flaky(10, clock=clock, duration=0.25)
    fn = retrying(flavor, registry, flaky, "payments", attempts=3, backoff="fixed", jitter=None)

    with pytest.raises(ConnectionError) as raised:
        flavor.call(fn)

    assert type(raised.value) is ConnectionError
    assert raised.value is flaky.errors[-1]
    assert len(flaky.errors) == 3
    # Three attempts of 0.25 s and two waits of 1 s.
    assert clock.now() == 1002.75
    assert_give_up_note(raised.value, name="payments", attempts=3, elapsed=2.75)
    for earlier in flaky.errors[:-1]:
        assert not getattr(earlier, "__notes__", [])
    assert stats(fn) == expected_stats(calls=1, attempts=3, give_ups=1)


def test_give_up_keeps_the_error_type_of_the_last_attempt(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """When attempts fail with different errors, the one raised is the last, of its own type."""
    kinds: list[Callable[[str], Exception]] = [ConnectionError, TimeoutError, KeyError]
    flaky = Flaky(10, make_error=lambda n: kinds[n - 1](f"attempt {n}"))
    fn = retrying(flavor, registry, flaky, attempts=3)

    with pytest.raises(KeyError) as raised:
        flavor.call(fn)

    assert raised.value is flaky.errors[-1]


def test_a_single_attempt_never_retries(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """With ``attempts=1`` a failure is re-raised at once, noted, and counted as a give-up."""
    flaky = Flaky(10)
    fn = retrying(flavor, registry, flaky, "once", attempts=1)

    with pytest.raises(ConnectionError) as raised:
        flavor.call(fn)

    assert flaky.calls == 1
    assert clock.sleeps == []
    assert raised.value is flaky.errors[0]
    assert_give_up_note(raised.value, name="once", attempts=1, elapsed=0.0)
    assert stats(fn) == expected_stats(calls=1, attempts=1, give_ups=1)


def test_stats_add_up_over_many_calls(flavor: Flavor, registry: hazina.Registry) -> None:
    """First-try successes, later successes and give-ups are each counted once."""
    flaky = Flaky(0)
    fn = retrying(flavor, registry, flaky, attempts=3)
    for failures in (0, 1, 2, 3, 0):
        flaky.calls, flaky.failures = 0, failures
        if failures < 3:
            assert flavor.call(fn) == "ok"
        else:
            with pytest.raises(ConnectionError):
                flavor.call(fn)

    assert stats(fn) == expected_stats(
        calls=5, attempts=1 + 2 + 3 + 3 + 1, successes=4, successes_after_retry=2, give_ups=1
    )


# -- backoff ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "waits"),
    [
        pytest.param({}, [1.0, 2.0, 4.0, 8.0], id="exponential-defaults"),
        pytest.param(
            {"backoff": "exponential", "initial": 0.5, "multiplier": 3},
            [0.5, 1.5, 4.5, 13.5],
            id="exponential",
        ),
        pytest.param({"backoff": "linear", "initial": 2}, [2.0, 4.0, 6.0, 8.0], id="linear"),
        pytest.param({"backoff": "linear"}, [1.0, 2.0, 3.0, 4.0], id="linear-default-initial"),
        pytest.param({"backoff": "fixed", "initial": 3}, [3.0, 3.0, 3.0, 3.0], id="fixed"),
        pytest.param({"backoff": "fixed"}, [1.0, 1.0, 1.0, 1.0], id="fixed-default-initial"),
    ],
)
def test_backoff_without_jitter_waits_exactly(
    flavor: Flavor,
    registry: hazina.Registry,
    clock: FakeClock,
    config: dict[str, Any],
    waits: list[float],
) -> None:
    """With ``jitter=None`` the waits follow the backoff curve exactly."""
    fn = retrying(flavor, registry, Flaky(10), attempts=5, jitter=None, **config)

    with pytest.raises(ConnectionError):
        flavor.call(fn)

    assert clock.sleeps == pytest.approx(waits)
    assert clock.now() == pytest.approx(1000.0 + sum(waits))


@pytest.mark.parametrize(
    ("config", "waits"),
    [
        pytest.param({"backoff": "exponential"}, [1.0, 2.0, 4.0, 5.0, 5.0], id="exponential"),
        pytest.param({"backoff": "linear", "initial": 2}, [2.0, 4.0, 5.0, 5.0, 5.0], id="linear"),
        pytest.param({"backoff": "fixed", "initial": 9}, [5.0] * 5, id="fixed"),
    ],
)
def test_waits_are_capped_at_max_delay(
    flavor: Flavor,
    registry: hazina.Registry,
    clock: FakeClock,
    config: dict[str, Any],
    waits: list[float],
) -> None:
    """No wait exceeds ``max_delay``, whatever the curve asks for."""
    fn = retrying(flavor, registry, Flaky(10), attempts=6, jitter=None, max_delay=5, **config)

    with pytest.raises(ConnectionError):
        flavor.call(fn)

    assert clock.sleeps == pytest.approx(waits)


def test_exponential_backoff_does_not_overflow_with_many_attempts(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """Exponential growth far beyond a float's range still waits ``max_delay``."""
    fn = retrying(
        flavor, registry, Flaky(2000), attempts=1100, jitter=None, max_delay=0.5, initial=0.5
    )

    with pytest.raises(ConnectionError):
        flavor.call(fn)

    assert len(clock.sleeps) == 1099
    assert set(clock.sleeps) == {0.5}


def test_callable_backoff_gets_attempt_numbers_from_one_and_the_error(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """A callable backoff gets the failed attempt's number (from 1) and error; it is capped."""
    asked: list[tuple[int, BaseException | None]] = []

    def backoff(attempt: int, error: BaseException | None) -> float:
        asked.append((attempt, error))
        return 10.0 * attempt

    flaky = Flaky(10)
    fn = retrying(flavor, registry, flaky, attempts=4, backoff=backoff, max_delay=25, jitter=None)

    with pytest.raises(ConnectionError):
        flavor.call(fn)

    assert [attempt for attempt, _ in asked] == [1, 2, 3]
    assert all(error is flaky.errors[n] for n, (_, error) in enumerate(asked))
    assert clock.sleeps == [10.0, 20.0, 25.0]


def test_callable_backoff_is_jittered_like_the_builtins(
    flavor: Flavor, registry: hazina.Registry, events: list[object]
) -> None:
    """With the default (full) jitter a callable's value is spread over [0, value], capped first."""

    def backoff(attempt: int, error: BaseException | None) -> float:
        return 4.0 if attempt == 1 else 100.0

    fn = retrying(flavor, registry, Flaky(10_000), attempts=3, backoff=backoff, max_delay=8)

    per_call = collect_waits(flavor, fn, events, calls=40)

    firsts = [waits[0] for waits in per_call]
    seconds = [waits[1] for waits in per_call]
    assert all(0.0 <= wait <= 4.0 for wait in firsts)
    assert all(0.0 <= wait <= 8.0 for wait in seconds)
    assert len(set(firsts)) > 1
    assert len(set(seconds)) > 1


# -- jitter ------------------------------------------------------------------------------------


def test_full_jitter_waits_between_zero_and_the_backoff(
    flavor: Flavor, registry: hazina.Registry, events: list[object]
) -> None:
    """Full jitter picks each wait in [0, d], d being the backoff's value; waits vary."""
    fn = retrying(flavor, registry, Flaky(10_000), attempts=4, jitter="full")

    per_call = collect_waits(flavor, fn, events, calls=40)

    for waits in per_call:
        assert len(waits) == 3
        for attempt, wait in enumerate(waits, start=1):
            assert 0.0 <= wait <= 2.0 ** (attempt - 1)
    thirds = [waits[2] for waits in per_call]
    assert len(set(thirds)) > 1
    assert min(thirds) < 2.0  # below d/2: not merely equal jitter


def test_full_jitter_is_the_default(
    flavor: Flavor, registry: hazina.Registry, events: list[object]
) -> None:
    """Without ``jitter`` the waits are spread over [0, d] rather than exact."""
    fn = retrying(flavor, registry, Flaky(10_000), attempts=2, initial=4)

    firsts = [waits[0] for waits in collect_waits(flavor, fn, events, calls=40)]

    assert all(0.0 <= wait <= 4.0 for wait in firsts)
    assert len(set(firsts)) > 1
    assert min(firsts) < 2.0


def test_equal_jitter_waits_between_half_and_all_of_the_backoff(
    flavor: Flavor, registry: hazina.Registry, events: list[object]
) -> None:
    """Equal jitter picks each wait in [d/2, d]; waits vary."""
    fn = retrying(flavor, registry, Flaky(10_000), attempts=4, jitter="equal")

    per_call = collect_waits(flavor, fn, events, calls=40)

    for waits in per_call:
        assert len(waits) == 3
        for attempt, wait in enumerate(waits, start=1):
            d = 2.0 ** (attempt - 1)
            assert d / 2 <= wait <= d
    assert len({waits[2] for waits in per_call}) > 1


def test_decorrelated_jitter_walks_between_initial_and_three_times_the_previous_wait(
    flavor: Flavor, registry: hazina.Registry, events: list[object]
) -> None:
    """Decorrelated jitter picks each wait in [initial, min(max_delay, 3 * previous wait)]."""
    fn = retrying(
        flavor,
        registry,
        Flaky(10_000),
        attempts=7,
        jitter="decorrelated",
        initial=0.5,
        max_delay=4,
    )

    per_call = collect_waits(flavor, fn, events, calls=40)

    for waits in per_call:
        assert len(waits) == 6
        previous = 0.5  # the first wait grows from `initial`
        for wait in waits:
            assert 0.5 <= wait <= min(4.0, 3 * previous)
            previous = wait
    assert len({waits[0] for waits in per_call}) > 1
    assert max(wait for waits in per_call for wait in waits) > 1.5  # it does grow


def test_decorrelated_state_starts_afresh_for_each_call(
    flavor: Flavor, registry: hazina.Registry, events: list[object]
) -> None:
    """A call's first decorrelated wait grows from ``initial``, not from an earlier call's wait."""
    fn = retrying(
        flavor, registry, Flaky(10_000), attempts=6, jitter="decorrelated", initial=1, max_delay=30
    )

    per_call = collect_waits(flavor, fn, events, calls=30)

    assert all(1.0 <= waits[0] <= 3.0 for waits in per_call)


@pytest.mark.parametrize(
    ("jitter", "low"),
    [pytest.param("full", 0.0, id="full"), pytest.param("equal", 5.0, id="equal")],
)
def test_jitter_applies_after_the_cap(
    flavor: Flavor, registry: hazina.Registry, events: list[object], jitter: str, low: float
) -> None:
    """Capped waits are still jittered: they vary within the jitter's range below ``max_delay``."""
    fn = retrying(
        flavor, registry, Flaky(10_000), attempts=3, initial=100, max_delay=10, jitter=jitter
    )

    waits = [w for call in collect_waits(flavor, fn, events, calls=40) for w in call]

    assert all(low <= wait <= 10.0 for wait in waits)
    assert len(set(waits)) > 1
    assert min(waits) < 10.0


def test_the_clock_sleeps_exactly_the_scheduled_waits(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock, events: list[object]
) -> None:
    """The waits announced in events are the waits actually slept, in order."""
    fn = retrying(flavor, registry, Flaky(10_000), attempts=5)

    collect_waits(flavor, fn, events, calls=10)

    assert clock.sleeps == [event.wait for event in scheduled(events) if event.wait > 0]
    assert clock.now() == pytest.approx(1000.0 + sum(clock.sleeps))


# -- which errors and results are retried ----------------------------------------------------


def server_error(error: BaseException) -> bool:
    """Whether ``error`` has a 5xx status."""
    status = getattr(error, "status", 0)
    return isinstance(status, int) and status >= 500


ORS = hazina.when(ConnectionError) | hazina.when(server_error)
ANDS = hazina.when(HTTPError) & hazina.when(server_error)


@pytest.mark.parametrize(
    ("on", "make_retried", "make_other"),
    [
        pytest.param(ConnectionError, ConnectionError, lambda: ValueError("x"), id="type"),
        pytest.param(OSError, ConnectionResetError, lambda: ValueError("x"), id="base-type"),
        pytest.param(
            (ConnectionError, TimeoutError), TimeoutError, lambda: KeyError("x"), id="tuple"
        ),
        pytest.param(server_error, lambda: HTTPError(503), lambda: HTTPError(404), id="predicate"),
        pytest.param(ORS, lambda: HTTPError(502), lambda: HTTPError(400), id="or-predicate"),
        pytest.param(ORS, ConnectionError, lambda: ValueError("x"), id="or-type"),
        pytest.param(ANDS, lambda: HTTPError(500), lambda: HTTPError(499), id="and-predicate"),
        pytest.param(ANDS, lambda: HTTPError(500), lambda: OtherStatusError(500), id="and-type"),
    ],
)
def test_on_selects_the_errors_worth_retrying(
    flavor: Flavor,
    registry: hazina.Registry,
    clock: FakeClock,
    on: Any,
    make_retried: Callable[[], Exception],
    make_other: Callable[[], Exception],
) -> None:
    """A matching error is retried to the end; any other propagates at once, untouched."""
    retried, other = make_retried(), make_other()
    errors = iter([retried, retried, retried, other])

    def body() -> str:
        raise next(errors)

    fn = retrying(flavor, registry, body, attempts=3, on=on)

    with pytest.raises(type(retried)) as raised:
        flavor.call(fn)
    assert raised.value is retried
    assert stats(fn) == expected_stats(calls=1, attempts=3, give_ups=1)

    before = len(clock.sleeps)
    with pytest.raises(type(other)) as raised_other:
        flavor.call(fn)
    assert raised_other.value is other
    assert not getattr(other, "__notes__", [])
    assert len(clock.sleeps) == before
    assert stats(fn) == expected_stats(calls=2, attempts=4, give_ups=1)


def test_an_error_outside_on_after_retries_propagates_at_once(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """A non-matching error on a later attempt ends the call there, without a give-up."""
    flaky = Flaky(10, make_error=lambda n: ConnectionError("down") if n == 1 else ValueError("bad"))
    fn = retrying(flavor, registry, flaky, attempts=5, on=ConnectionError)

    with pytest.raises(ValueError, match="bad") as raised:
        flavor.call(fn)

    assert flaky.calls == 2
    assert raised.value is flaky.errors[-1]
    assert stats(fn) == expected_stats(calls=1, attempts=2)


def test_on_result_retries_until_the_result_is_acceptable(
    flavor: Flavor, registry: hazina.Registry, events: list[object]
) -> None:
    """A result the ``on_result`` predicate rejects is retried like a failure."""
    results = iter([None, None, "ready"])

    def body() -> str | None:
        return next(results)

    fn = retrying(
        flavor, registry, body, attempts=5, on_result=lambda value: value is None, jitter=None
    )

    assert flavor.call(fn) == "ready"

    assert [(event.attempt, event.error) for event in scheduled(events)] == [(1, None), (2, None)]
    assert gave_up(events) == []
    assert stats(fn) == expected_stats(calls=1, attempts=3, successes=1, successes_after_retry=1)


def test_on_result_exhausted_returns_the_last_result_as_a_give_up(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock, events: list[object]
) -> None:
    """When every result is rejected, the last one is returned and counted as a give-up."""
    produced: list[list[str]] = []

    def body() -> list[str]:
        produced.append([f"pending {len(produced) + 1}"])
        return produced[-1]

    fn = retrying(
        flavor, registry, body, "poll", attempts=3, on_result=lambda value: True, jitter=None
    )

    result = flavor.call(fn)

    assert result is produced[-1]
    assert result == ["pending 3"]
    assert clock.sleeps == [1.0, 2.0]
    assert gave_up(events) == [hazina.RetryGaveUp("poll", 3, 3.0, None)]
    assert stats(fn) == expected_stats(calls=1, attempts=3, give_ups=1)


def test_on_result_after_an_error_returns_the_last_result(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """A run mixing errors and rejected results ends with whatever the last attempt gave."""
    outcomes: list[object] = [ConnectionError("down"), "stale", "stale again"]
    calls = iter(outcomes)

    def body() -> object:
        outcome = next(calls)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    fn = retrying(flavor, registry, body, attempts=3, on_result=lambda value: "stale" in value)

    assert flavor.call(fn) == "stale again"
    assert stats(fn) == expected_stats(calls=1, attempts=3, give_ups=1)


def test_on_result_is_not_consulted_for_an_acceptable_first_result(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """A first result the predicate accepts returns at once as a first-try success."""
    fn = retrying(flavor, registry, Flaky(0, value=7), on_result=lambda value: value is None)

    assert flavor.call(fn) == 7
    assert clock.sleeps == []
    assert stats(fn) == expected_stats(calls=1, attempts=1, successes=1)


class CallbackBug(Exception):
    """A user callback (``on``, ``on_result``, a backoff function) crashed."""


def crash(*_: object) -> Any:
    """A callback that always raises."""
    raise CallbackBug("callback crashed")


def crash_the_second_time() -> Callable[[object], bool]:
    """A predicate that answers "retry" once, then crashes."""
    seen = 0

    def predicate(_: object) -> bool:
        nonlocal seen
        seen += 1
        if seen > 1:
            raise CallbackBug("callback crashed")
        return True

    return predicate


@pytest.mark.parametrize(
    ("config", "failures", "attempts"),
    [
        (lambda: {"on": crash}, 1, 1),
        (lambda: {"on": crash_the_second_time()}, 2, 2),
        (lambda: {"on_result": crash}, 0, 1),
        (lambda: {"on_result": crash_the_second_time()}, 0, 2),
        (lambda: {"backoff": crash}, 1, 1),
    ],
    ids=["on", "on-later", "on_result", "on_result-later", "backoff"],
)
def test_a_raising_callback_still_counts_the_call(
    flavor: Flavor,
    registry: hazina.Registry,
    config: Callable[[], dict[str, Any]],
    failures: int,
    attempts: int,
) -> None:
    """Regression (issue 10): a raising ``on``, ``on_result`` or backoff callable ended the
    call with its error but left the call out of the stats; it now counts as a failed call
    with the attempts it made."""
    fn = retrying(flavor, registry, Flaky(failures), attempts=3, jitter=None, **config())

    with pytest.raises(CallbackBug):
        flavor.call(fn)

    assert stats(fn).calls == 1
    assert stats(fn).attempts == attempts
    assert stats(fn).successes == 0


def test_a_backoff_function_returning_nan_or_a_negative_wait_is_an_error(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """A backoff function's NaN or negative wait, which no sleep accepts, is a clear
    ValueError (and the call is counted), not an error from deep inside the sleep."""
    for index, wait in enumerate([float("nan"), -1.0]):
        fn = retrying(flavor, registry, Flaky(1), f"bad-{index}", backoff=lambda a, e, w=wait: w)
        with pytest.raises(ValueError, match="backoff function returned"):
            flavor.call(fn)
        assert stats(fn).calls == 1


# -- retry_after and timeout -------------------------------------------------------------------


def test_retry_after_is_a_floor_for_the_wait(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """An error's ``retry_after`` above the backoff is waited in full; below it, backoff wins."""
    flaky = Flaky(2, make_error=lambda n: Throttled(5.0 if n == 1 else 0.5))
    fn = retrying(flavor, registry, flaky, attempts=3, jitter=None, initial=1)

    assert flavor.call(fn) == "ok"

    assert clock.sleeps == [5.0, 2.0]


def _throttled_waits(flavor: Flavor, fn: Retried, events: list[object]) -> list[float]:
    """Call ``fn``, which always raises :class:`Throttled`; its scheduled waits."""
    start = len(events)
    with pytest.raises(Throttled):
        flavor.call(fn)
    return [event.wait for event in scheduled(events[start:])]


def test_retry_after_floor_holds_with_jitter(
    flavor: Flavor, registry: hazina.Registry, events: list[object]
) -> None:
    """Jitter never takes a wait below the error's ``retry_after``."""
    flaky = Flaky(10_000, make_error=lambda n: Throttled(3.0))
    fn = retrying(flavor, registry, flaky, attempts=3, initial=8, max_delay=10)

    waits = [w for _ in range(30) for w in _throttled_waits(flavor, fn, events)]

    assert all(3.0 <= wait <= 10.0 for wait in waits)
    assert len(set(waits)) > 1


def test_retry_after_equal_to_max_delay_is_waited(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """A ``retry_after`` of exactly ``max_delay`` does not exceed it, so the retry waits it out."""
    flaky = Flaky(1, make_error=lambda n: Throttled(30.0))
    fn = retrying(flavor, registry, flaky, attempts=3, jitter=None)

    assert flavor.call(fn) == "ok"
    assert clock.sleeps == [30.0]


def test_retry_after_beyond_max_delay_gives_up_at_once(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock, events: list[object]
) -> None:
    """A ``retry_after`` above ``max_delay`` re-raises at once, with the note, as a give-up."""
    flaky = Flaky(10, make_error=lambda n: Throttled(60.0))
    fn = retrying(flavor, registry, flaky, "patient", attempts=5, max_delay=30)

    with pytest.raises(Throttled) as raised:
        flavor.call(fn)

    assert flaky.calls == 1
    assert clock.sleeps == []
    assert raised.value is flaky.errors[0]
    assert_give_up_note(raised.value, name="patient", attempts=1, elapsed=0.0)
    assert scheduled(events) == []
    assert gave_up(events) == [hazina.RetryGaveUp("patient", 1, 0.0, raised.value)]
    assert stats(fn) == expected_stats(calls=1, attempts=1, give_ups=1)


def test_retry_after_beyond_max_delay_on_a_later_attempt_gives_up_there(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """Giving up early on a later attempt reports the attempts made so far."""
    flaky = Flaky(10, make_error=lambda n: ConnectionError("down") if n == 1 else Throttled(100.0))
    fn = retrying(flavor, registry, flaky, "later", attempts=5, jitter=None)

    with pytest.raises(Throttled) as raised:
        flavor.call(fn)

    assert flaky.calls == 2
    assert clock.sleeps == [1.0]
    assert_give_up_note(raised.value, name="later", attempts=2, elapsed=1.0)
    assert stats(fn) == expected_stats(calls=1, attempts=2, give_ups=1)


def test_hazina_errors_retry_after_is_honoured(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """``RateLimitExceeded`` and ``CircuitOpenError`` raised by the operation set the wait floor."""
    made: list[Exception] = [
        hazina.RateLimitExceeded("api", None, 4.0),
        hazina.CircuitOpenError("db", 6.0),
    ]
    flaky = Flaky(2, make_error=lambda n: made[n - 1])
    fn = retrying(flavor, registry, flaky, attempts=3, jitter=None)

    assert flavor.call(fn) == "ok"
    assert clock.sleeps == [4.0, 6.0]


def test_a_retry_after_of_none_leaves_the_backoff_alone(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """A forced-open breaker's error (``retry_after=None``) is retried on the normal backoff."""
    flaky = Flaky(10, make_error=lambda n: hazina.CircuitOpenError("db", None))
    fn = retrying(flavor, registry, flaky, attempts=3, jitter=None)

    with pytest.raises(hazina.CircuitOpenError):
        flavor.call(fn)

    assert clock.sleeps == [1.0, 2.0]


def test_a_wait_that_would_cross_the_timeout_is_not_started(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock, events: list[object]
) -> None:
    """With too little ``timeout`` left for the next wait, the last error is re-raised at once."""
    # Attempts take 1.5 s, waits 4 s: attempt 2 ends at 7 s, and 4 s more would pass 10 s.
    flaky = Flaky(10, clock=clock, duration=1.5)
    fn = retrying(
        flavor,
        registry,
        flaky,
        "budget",
        attempts=10,
        timeout=10,
        backoff="fixed",
        initial=4,
        jitter=None,
    )

    with pytest.raises(ConnectionError) as raised:
        flavor.call(fn)

    assert flaky.calls == 2
    assert clock.sleeps == [4.0]
    assert clock.now() == 1007.0
    assert raised.value is flaky.errors[-1]
    assert_give_up_note(raised.value, name="budget", attempts=2, elapsed=7.0)
    assert gave_up(events) == [hazina.RetryGaveUp("budget", 2, 7.0, raised.value)]
    assert stats(fn) == expected_stats(calls=1, attempts=2, give_ups=1)


def test_timeout_lets_retries_that_fit_go_ahead(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """Waits that end before the deadline are made, and a success within it is returned."""
    flaky = Flaky(2, clock=clock, duration=1.0)
    fn = retrying(
        flavor, registry, flaky, attempts=5, timeout=10, backoff="fixed", initial=2, jitter=None
    )

    assert flavor.call(fn) == "ok"
    assert clock.sleeps == [2.0, 2.0]
    assert clock.now() == 1007.0


def test_an_attempt_that_overruns_the_timeout_ends_the_call(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """A first attempt that already used up the whole ``timeout`` is not followed by a wait."""
    flaky = Flaky(10, clock=clock, duration=12)
    fn = retrying(flavor, registry, flaky, "overrun", attempts=5, timeout=10, initial=0.01)

    with pytest.raises(ConnectionError) as raised:
        flavor.call(fn)

    assert flaky.calls == 1
    assert clock.sleeps == []
    assert_give_up_note(raised.value, name="overrun", attempts=1, elapsed=12.0)


def test_retry_after_beyond_the_remaining_timeout_gives_up_at_once(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """A ``retry_after`` within ``max_delay`` but past the ``timeout`` deadline is not waited."""
    flaky = Flaky(10, make_error=lambda n: Throttled(20.0))
    fn = retrying(flavor, registry, flaky, "short", attempts=5, timeout=15, max_delay=30)

    with pytest.raises(Throttled) as raised:
        flavor.call(fn)

    assert flaky.calls == 1
    assert clock.sleeps == []
    assert_give_up_note(raised.value, name="short", attempts=1, elapsed=0.0)
    assert stats(fn) == expected_stats(calls=1, attempts=1, give_ups=1)


# -- instant waits -------------------------------------------------------------------------------


def test_instant_waits_skip_the_clock(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock, events: list[object]
) -> None:
    """Inside ``instant_waits()`` retries still happen, but no wait is slept."""
    flaky = Flaky(2)
    fn = retrying(flavor, registry, flaky, attempts=3, jitter=None, initial=10)

    with instant_waits():
        assert flavor.call(fn) == "ok"

    assert flaky.calls == 3
    assert len(scheduled(events)) == 2
    assert clock.sleeps == []
    assert clock.now() == 1000.0


def test_instant_waits_spend_no_real_time(flavor: Flavor) -> None:
    """With the real clock, instant waits make a retry with long waits return at once."""
    flaky = Flaky(2)
    real = hazina.Registry()
    fn = retrying(flavor, real, flaky, attempts=3, jitter=None, initial=5)

    with instant_waits():
        started = time.monotonic()
        assert flavor.call(fn) == "ok"
        spent = time.monotonic() - started

    assert flaky.calls == 3
    assert spent < 2.0


def test_instant_waits_context_manager_restores_the_previous_setting(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """Leaving the ``with`` block puts back whatever setting was in force before it."""
    fn = retrying(flavor, registry, Flaky(10_000), attempts=2, jitter=None)

    def waits_slept() -> int:
        before = len(clock.sleeps)
        with pytest.raises(ConnectionError):
            flavor.call(fn)
        return len(clock.sleeps) - before

    assert waits_slept() == 1
    with instant_waits():
        assert waits_slept() == 0
        with instant_waits(False):
            assert waits_slept() == 1
        assert waits_slept() == 0
        with instant_waits():
            assert waits_slept() == 0
        assert waits_slept() == 0
    assert waits_slept() == 1


def test_instant_waits_called_switches_on_until_switched_off(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """A bare ``instant_waits()`` call stays in force; ``instant_waits(False)`` switches it off."""
    fn = retrying(flavor, registry, Flaky(10_000), attempts=2, jitter=None)

    instant_waits()
    with pytest.raises(ConnectionError):
        flavor.call(fn)
    with pytest.raises(ConnectionError):
        flavor.call(fn)
    assert clock.sleeps == []

    instant_waits(False)
    with pytest.raises(ConnectionError):
        flavor.call(fn)
    assert clock.sleeps == [1.0]


def test_instant_waits_restore_even_when_the_block_raises(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """An exception leaving the ``with`` block still restores the previous setting."""
    fn = retrying(flavor, registry, Flaky(10_000), attempts=2, jitter=None)

    with pytest.raises(ConnectionError), instant_waits():
        flavor.call(fn)
    assert clock.sleeps == []

    with pytest.raises(ConnectionError):
        flavor.call(fn)
    assert clock.sleeps == [1.0]


# -- events --------------------------------------------------------------------------------------


def test_events_report_each_retry_and_the_give_up(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock, events: list[object]
) -> None:
    """Each retry emits ``RetryScheduled`` and running out emits one ``RetryGaveUp``."""
    flaky = Flaky(10, clock=clock, duration=0.5)
    fn = retrying(flavor, registry, flaky, "orders", attempts=3, jitter=None)

    with pytest.raises(ConnectionError):
        flavor.call(fn)

    first, second, third = flaky.errors
    assert events == [
        hazina.RetryScheduled("orders", 1, 1.0, first),
        hazina.RetryScheduled("orders", 2, 2.0, second),
        hazina.RetryGaveUp("orders", 3, 4.5, third),
    ]


def test_a_success_after_retries_emits_no_give_up(
    flavor: Flavor, registry: hazina.Registry, events: list[object]
) -> None:
    """A call that eventually succeeds emits its ``RetryScheduled`` events and nothing else."""
    flaky = Flaky(1)
    fn = retrying(flavor, registry, flaky, "orders", jitter=None)

    assert flavor.call(fn) == "ok"
    assert events == [hazina.RetryScheduled("orders", 1, 1.0, flaky.errors[0])]


def test_events_arrive_before_the_call_returns(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """A retry's ``RetryScheduled`` is delivered before the wait it announces is slept."""
    seen_at: list[tuple[float, int]] = []
    registry.subscribe(lambda event: seen_at.append((clock.now(), len(clock.sleeps))))
    fn = retrying(flavor, registry, Flaky(1), jitter=None)

    assert flavor.call(fn) == "ok"
    assert seen_at == [(1000.0, 0)]


def test_a_listener_that_raises_does_not_break_the_retry(
    flavor: Flavor, registry: hazina.Registry, caplog: pytest.LogCaptureFixture
) -> None:
    """A listener failing on retry events is logged; the call still retries and succeeds."""

    def broken(event: object) -> None:
        raise RuntimeError("listener bug")

    registry.subscribe(broken)
    flaky = Flaky(2)
    fn = retrying(flavor, registry, flaky, attempts=3)

    with caplog.at_level("ERROR", logger="hazina"):
        assert flavor.call(fn) == "ok"

    assert flaky.calls == 3
    assert any("listener" in record.getMessage() for record in caplog.records)


def test_sync_waits_sleep_and_async_waits_await(flavor: Flavor) -> None:
    """A sync call waits with the clock's blocking sleep, an async call awaits its ``asleep``."""
    used: list[str] = []

    class RecordingClock(FakeClock):
        """A fake clock that remembers which way each wait was made."""

        def sleep(self, seconds: float) -> None:
            used.append("sleep")
            super().sleep(seconds)

        async def asleep(self, seconds: float) -> None:
            used.append("asleep")
            await super().asleep(seconds)

    registry = hazina.Registry(clock=RecordingClock(start=1000.0))
    fn = retrying(flavor, registry, Flaky(2), attempts=3)

    assert flavor.call(fn) == "ok"
    assert used == ["asleep" if flavor.is_async else "sleep"] * 2


def test_reset_zeroes_the_stats_and_counting_resumes(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """After ``reset()`` every counter reads zero, first-try successes too; counting resumes."""
    flaky = Flaky(1)
    fn = retrying(flavor, registry, flaky, attempts=3)
    assert flavor.call(fn) == "ok"
    assert flavor.call(fn) == "ok"  # a first-try success
    assert stats(fn) == expected_stats(calls=2, attempts=3, successes=2, successes_after_retry=1)

    registry.reset()
    assert stats(fn) == expected_stats(calls=0, attempts=0)

    assert flavor.call(fn) == "ok"
    flaky.calls, flaky.failures = 0, 1
    assert flavor.call(fn) == "ok"
    assert stats(fn) == expected_stats(calls=2, attempts=3, successes=2, successes_after_retry=1)
    assert registry.stats()["retry"]["flaky"] == stats(fn)


# -- cancellation and interrupts ----------------------------------------------------------------


@pytest.mark.parametrize("error_type", [asyncio.CancelledError, KeyboardInterrupt])
@pytest.mark.parametrize("on", [Exception, BaseException], ids=["on-default", "on-BaseException"])
def test_cancellation_and_interrupts_are_never_retried(
    flavor: Flavor,
    registry: hazina.Registry,
    clock: FakeClock,
    error_type: type[BaseException],
    on: type[BaseException],
) -> None:
    """``CancelledError`` and ``KeyboardInterrupt`` propagate at the first attempt, untouched."""
    flaky = Flaky(10, make_error=lambda n: error_type())
    fn = retrying(flavor, registry, flaky, attempts=5, on=on)

    with pytest.raises(error_type) as raised:
        flavor.call(fn)

    assert flaky.calls == 1
    assert raised.value is flaky.errors[0]
    assert not getattr(raised.value, "__notes__", [])
    assert clock.sleeps == []
    assert stats(fn) == expected_stats(calls=1, attempts=1)


def test_an_interrupt_during_a_wait_ends_the_call(flavor: Flavor) -> None:
    """``KeyboardInterrupt`` raised while waiting between attempts propagates; no retry follows."""

    class InterruptedClock(FakeClock):
        """A fake clock whose every wait is interrupted."""

        def sleep(self, seconds: float) -> None:
            raise KeyboardInterrupt

        async def asleep(self, seconds: float) -> None:
            raise KeyboardInterrupt

    registry = hazina.Registry(clock=InterruptedClock(start=1000.0))
    flaky = Flaky(10)
    fn = retrying(flavor, registry, flaky, attempts=5)

    with pytest.raises(KeyboardInterrupt):
        flavor.call(fn)

    assert flaky.calls == 1
    assert not getattr(flaky.errors[0], "__notes__", [])
    assert stats(fn) == expected_stats(calls=1, attempts=1)


def test_cancelling_a_task_during_a_wait_stops_the_retry() -> None:
    """A task cancelled while waiting between attempts ends with ``CancelledError``, no retry."""

    class StuckClock(FakeClock):
        """A fake clock whose async sleep never ends on its own."""

        async def asleep(self, seconds: float) -> None:
            self.sleeps.append(seconds)
            await asyncio.Event().wait()

    clock = StuckClock(start=1000.0)
    attempts = 0

    @hazina.retry("cancelled", registry=hazina.Registry(clock=clock), attempts=5, jitter=None)
    async def op() -> str:
        nonlocal attempts
        attempts += 1
        raise ConnectionError("down")

    async def main() -> None:
        task = asyncio.create_task(op())
        for _ in range(5):
            await asyncio.sleep(0)
        assert clock.sleeps == [1.0]  # the task is in its first wait
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())

    assert attempts == 1
    assert op.policy.stats() == expected_stats(calls=1, attempts=1)


# -- per-call state ------------------------------------------------------------------------------


def test_threads_never_share_a_call_s_attempt_count() -> None:
    """Eight threads calling one flaky operation each get their own attempts; stats add up."""
    threads, calls_per_thread = 8, 20
    local = threading.local()
    barrier = threading.Barrier(threads, timeout=30)
    lock = threading.Lock()

    class LockstepClock(FakeClock):
        """A fake clock whose sleep returns only once every thread is sleeping too."""

        def sleep(self, seconds: float) -> None:
            with lock:
                super().sleep(seconds)
            barrier.wait()

    registry = hazina.Registry(clock=LockstepClock(start=1000.0))

    # Every thread runs the same plan of failures, so the barriers line up: all eight
    # are inside the same attempt, and inside the same wait, at the same moment.
    @hazina.retry("shared", registry=registry, attempts=3, jitter=None)
    def op(failures: int) -> int:
        local.attempts += 1
        barrier.wait()
        if local.attempts <= failures:
            raise ConnectionError(f"failure {local.attempts} of {failures}")
        return int(local.attempts)

    def worker() -> list[tuple[int, int, bool]]:
        outcomes = []
        for call in range(calls_per_thread):
            failures = call % 4
            local.attempts = 0
            try:
                op(failures)
            except ConnectionError:
                outcomes.append((failures, local.attempts, False))
            else:
                outcomes.append((failures, local.attempts, True))
        return outcomes

    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = [future.result() for future in [pool.submit(worker) for _ in range(threads)]]

    expected = [(call % 4, min(call % 4 + 1, 3), call % 4 < 3) for call in range(calls_per_thread)]
    for outcomes in results:
        assert outcomes == expected
    per_thread = calls_per_thread // 4
    assert op.policy.stats() == expected_stats(
        calls=threads * calls_per_thread,
        attempts=threads * per_thread * (1 + 2 + 3 + 3),
        successes=threads * per_thread * 3,
        successes_after_retry=threads * per_thread * 2,
        give_ups=threads * per_thread,
    )


def test_tasks_never_share_a_call_s_attempt_count(registry: hazina.Registry) -> None:
    """A hundred concurrent tasks each get their own attempts; stats add up."""
    tasks = 100
    running = 0
    most_running = 0

    @hazina.retry("shared", registry=registry, attempts=3)
    async def op(state: dict[str, int]) -> int:
        nonlocal running, most_running
        state["attempts"] += 1
        running += 1
        most_running = max(most_running, running)
        await asyncio.sleep(0)  # let every other task in, mid-attempt
        running -= 1
        if state["attempts"] <= state["failures"]:
            raise ConnectionError("down")
        return state["attempts"]

    async def one(failures: int) -> tuple[int, int, bool]:
        state = {"attempts": 0, "failures": failures}
        try:
            await op(state)
        except ConnectionError:
            return failures, state["attempts"], False
        return failures, state["attempts"], True

    async def main() -> list[tuple[int, int, bool]]:
        return await asyncio.gather(*(one(n % 4) for n in range(tasks)))

    outcomes = asyncio.run(main())

    assert outcomes == [(n % 4, min(n % 4 + 1, 3), n % 4 < 3) for n in range(tasks)]
    assert most_running > 50
    per_plan = tasks // 4
    assert op.policy.stats() == expected_stats(
        calls=tasks,
        attempts=per_plan * (1 + 2 + 3 + 3),
        successes=per_plan * 3,
        successes_after_retry=per_plan * 2,
        give_ups=per_plan,
    )


# -- methods -------------------------------------------------------------------------------------


def _fetch(owner: Any, key: str, *, times: int = 1) -> str:
    """Fetch ``key`` from the owner's flaky dependency."""
    return f"{key}={owner.flaky()}" * times


async def _afetch(owner: Any, key: str, *, times: int = 1) -> str:
    """Fetch ``key`` from the owner's flaky dependency."""
    return f"{key}={owner.flaky()}" * times


def _raw_fetch(flavor: Flavor) -> Callable[..., Any]:
    """The undecorated method body for the flavor, with a real signature and docstring."""
    return _afetch if flavor.is_async else _fetch


def _without_first(signature: inspect.Signature) -> inspect.Signature:
    """``signature`` as seen through a bound method."""
    return signature.replace(parameters=list(signature.parameters.values())[1:])


def _assert_looks_like(wrapper: Any, raw: Callable[..., Any], flavor: Flavor) -> None:
    """``wrapper`` keeps ``raw``'s name, docstring and kind of function."""
    assert wrapper.__name__ == raw.__name__
    assert wrapper.__doc__ == raw.__doc__
    assert inspect.iscoroutinefunction(wrapper) is flavor.is_async


def test_decorated_method_binds_self_and_keeps_its_looks(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """A decorated method gets its instance, retries, and keeps name, docstring and signature."""
    raw = _raw_fetch(flavor)
    decorate: Any = hazina.retry("method", registry=registry, jitter=None)

    class Service:
        flaky: Flaky  # on the instance only, so a wrongly bound call fails
        fetch = decorate(raw)

    service = Service()
    service.flaky = Flaky(2, value="v")

    assert flavor.call(service.fetch, "k", times=2) == "k=vk=v"
    assert service.flaky.calls == 3
    assert registry.retry("method").stats().attempts == 3
    assert inspect.signature(Service.fetch) == inspect.signature(raw)
    assert inspect.signature(service.fetch) == _without_first(inspect.signature(raw))
    _assert_looks_like(Service.fetch, raw, flavor)
    _assert_looks_like(service.fetch, raw, flavor)
    assert Service.fetch.policy is registry.retry("method")


@pytest.mark.parametrize("retry_outside", [True, False], ids=["retry-over", "retry-under"])
def test_decorated_classmethod_works_in_either_order(
    flavor: Flavor, registry: hazina.Registry, retry_outside: bool
) -> None:
    """A classmethod decorated above or below ``@retry`` binds the class and keeps its looks."""
    raw = _raw_fetch(flavor)
    decorate: Any = hazina.retry("classmethod", registry=registry, jitter=None)
    method = decorate(classmethod(raw)) if retry_outside else classmethod(decorate(raw))

    class Service:
        flaky = Flaky(2, value="c")
        fetch = method

    assert isinstance(Service.__dict__["fetch"], classmethod)
    assert flavor.call(Service.fetch, "k") == "k=c"
    assert flavor.call(Service().fetch, "k", times=2) == "k=ck=c"
    assert Service.flaky.calls == 4
    assert registry.retry("classmethod").stats() == expected_stats(
        calls=2, attempts=4, successes=2, successes_after_retry=1
    )
    assert inspect.signature(Service.fetch) == _without_first(inspect.signature(raw))
    _assert_looks_like(Service.fetch, raw, flavor)


@pytest.mark.parametrize("retry_outside", [True, False], ids=["retry-over", "retry-under"])
def test_decorated_staticmethod_works_in_either_order(
    flavor: Flavor, registry: hazina.Registry, retry_outside: bool
) -> None:
    """A staticmethod decorated above or below ``@retry`` is never bound and keeps its looks."""
    raw = _raw_fetch(flavor)
    decorate: Any = hazina.retry("staticmethod", registry=registry, jitter=None)
    method = decorate(staticmethod(raw)) if retry_outside else staticmethod(decorate(raw))

    class Holder:
        flaky = Flaky(2, value="s")

    class Service:
        fetch = method

    assert isinstance(Service.__dict__["fetch"], staticmethod)
    assert flavor.call(Service.fetch, Holder, "k") == "k=s"
    assert flavor.call(Service().fetch, Holder, "k", times=2) == "k=sk=s"
    assert Holder.flaky.calls == 4
    assert registry.retry("staticmethod").stats().attempts == 4
    assert inspect.signature(Service.fetch) == inspect.signature(raw)
    assert inspect.signature(Service().fetch) == inspect.signature(raw)
    _assert_looks_like(Service.fetch, raw, flavor)


def test_decorated_function_keeps_signature_name_and_docstring(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """A decorated plain function reports the original's signature, names and docstring."""
    raw = _raw_fetch(flavor)
    decorate: Any = hazina.retry("plain", registry=registry)

    fn = decorate(raw)

    assert inspect.signature(fn) == inspect.signature(raw)
    assert fn.__qualname__ == raw.__qualname__
    assert fn.__module__ == raw.__module__
    _assert_looks_like(fn, raw, flavor)
    assert fn.policy is registry.retry("plain")
