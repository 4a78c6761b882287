"""Retry, more: ``retry_after=`` over any failed outcome, ``attempts=None`` until the
timeout, and the block form ``hazina.retrying`` (sync and async, one policy with the
decorator's stats and events).

Time only moves on the fake clock; every scenario runs sync and async through ``flavor``.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import attrs
import pytest

import hazina
from hazina.testing import FakeClock, instant_waits

if TYPE_CHECKING:
    from conftest import Flavor


@attrs.frozen
class Response:
    """What an HTTP client returns: a status, and the server's ``Retry-After`` if any."""

    status: int
    retry_after: float | None = None


def read_retry_after(outcome: object) -> float | None:
    """The ``Retry-After`` of a response outcome; ``None`` for anything else."""
    return outcome.retry_after if isinstance(outcome, Response) else None


def throttled(response: Response) -> bool:
    return response.status in (429, 503)


class Sequence:
    """A dependency that gives the listed outcomes in turn (raising the exceptions)."""

    def __init__(self, *outcomes: object) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    def __call__(self) -> object:
        outcome = self.outcomes[min(self.calls, len(self.outcomes) - 1)]
        self.calls += 1
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


@pytest.fixture(autouse=True)
def real_waits() -> Iterator[None]:
    """Clock waits (recorded by the fake clock), not instant ones, unless a test asks."""
    with instant_waits(False):
        yield


def decorated(
    flavor: Flavor, registry: hazina.Registry, body: Callable[[], Any], **config: Any
) -> Any:
    """``body`` as a sync or async operation under the retry policy ``"dep"``."""
    decorate: Any = hazina.retry("dep", registry=registry, **config)
    return decorate(flavor.define(body))


def run_block(
    flavor: Flavor,
    registry: hazina.Registry,
    body: Callable[[], Any],
    name: str = "dep",
    **config: Any,
) -> list[int]:
    """Run ``body`` in the block form (``for``/``with``, or ``async for``/``async with``);
    the attempt numbers seen."""
    numbers: list[int] = []
    if not flavor.is_async:
        for attempt in hazina.retrying(name, registry=registry, **config):
            with attempt:
                numbers.append(attempt.number)
                body()
        return numbers

    async def block() -> list[int]:
        async for attempt in hazina.retrying(name, registry=registry, **config):
            async with attempt:
                numbers.append(attempt.number)
                body()
        return numbers

    result: list[int] = flavor.call(block)
    return result


# -- retry_after= ------------------------------------------------------------------------


def test_retry_after_reads_the_wait_from_a_rejected_result(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """A 429 result's Retry-After is the least wait before the next attempt."""
    dependency = Sequence(Response(429, retry_after=7), Response(200))
    fn = decorated(
        flavor,
        registry,
        dependency,
        on_result=throttled,
        retry_after=read_retry_after,
        initial=1,
        jitter=None,
    )

    assert flavor.call(fn) == Response(200)
    assert clock.sleeps == [7.0]


def test_retry_after_reads_the_wait_from_the_error(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """The callable gets the exception when the attempt raised."""
    seen: list[object] = []
    error = ConnectionError("slow down")

    def from_error(outcome: object) -> float:
        seen.append(outcome)
        return 4.0

    fn = decorated(
        flavor, registry, Sequence(error, "ok"), retry_after=from_error, initial=1, jitter=None
    )

    assert flavor.call(fn) == "ok"
    assert seen == [error]
    assert clock.sleeps == [4.0]


def test_retry_after_below_the_backoff_leaves_the_backoff(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """retry_after is a floor: a shorter one than the backoff changes nothing."""
    fn = decorated(
        flavor,
        registry,
        Sequence(ConnectionError(), "ok"),
        retry_after=lambda _: 0.5,
        initial=3,
        jitter=None,
    )

    assert flavor.call(fn) == "ok"
    assert clock.sleeps == [3.0]


@pytest.mark.parametrize("answer", [None, -1.0, float("nan"), True])
def test_retry_after_without_a_usable_number_leaves_the_backoff(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock, answer: object
) -> None:
    """None, a negative number, NaN or a bool asks for no floor."""
    fn = decorated(
        flavor,
        registry,
        Sequence(ConnectionError(), "ok"),
        retry_after=lambda _: answer,
        initial=2,
        jitter=None,
    )

    assert flavor.call(fn) == "ok"
    assert clock.sleeps == [2.0]


def test_retry_after_may_be_a_timedelta(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """A timedelta from the callable is its seconds."""
    fn = decorated(
        flavor,
        registry,
        Sequence(ConnectionError(), "ok"),
        retry_after=lambda _: datetime.timedelta(seconds=9),
        initial=1,
        jitter=None,
    )

    assert flavor.call(fn) == "ok"
    assert clock.sleeps == [9.0]


def test_retry_after_from_a_result_beyond_max_delay_gives_up_with_that_result(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """A Retry-After the caller would not wait (over max_delay) ends the call at once,
    returning the last result, counted as a give-up."""
    dependency = Sequence(Response(503, retry_after=120), Response(200))
    fn = decorated(
        flavor,
        registry,
        dependency,
        on_result=throttled,
        retry_after=read_retry_after,
        max_delay=30,
    )

    assert flavor.call(fn) == Response(503, retry_after=120)
    assert dependency.calls == 1
    assert clock.sleeps == []
    assert fn.policy.stats().give_ups == 1


def test_a_retry_after_callable_replaces_the_error_attribute(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """Given retry_after=, an error's own retry_after attribute is not read."""
    error = hazina.RateLimitExceeded("upstream", None, retry_after=50.0)
    fn = decorated(
        flavor, registry, Sequence(error, "ok"), retry_after=lambda _: None, initial=1, jitter=None
    )

    assert flavor.call(fn) == "ok"
    assert clock.sleeps == [1.0]


# -- attempts=None -------------------------------------------------------------------------


def test_attempts_none_retries_until_the_timeout(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """With no attempt limit, attempts go on while the next wait fits in the timeout."""
    dependency = Sequence(ConnectionError("down"))
    fn = decorated(
        flavor,
        registry,
        dependency,
        attempts=None,
        timeout=10,
        backoff="fixed",
        initial=1,
        jitter=None,
    )

    with pytest.raises(ConnectionError) as raised:
        flavor.call(fn)

    # Waits of 1 s at 0, 1, ... 8 s elapsed fit; the one at 9 s would reach the deadline.
    assert dependency.calls == 10
    assert clock.sleeps == [1.0] * 9
    assert "gave up after 10 attempts" in raised.value.__notes__[0]


def test_attempts_none_ends_under_instant_waits(flavor: Flavor, registry: hazina.Registry) -> None:
    """Skipped waits still count toward the timeout, so an endless retry still ends."""
    dependency = Sequence(ConnectionError("down"))
    fn = decorated(
        flavor,
        registry,
        dependency,
        attempts=None,
        timeout=60,
        backoff="fixed",
        initial=1,
        jitter=None,
    )

    with instant_waits(), pytest.raises(ConnectionError):
        flavor.call(fn)

    assert dependency.calls == 60


def test_attempts_none_needs_a_timeout(registry: hazina.Registry) -> None:
    """attempts=None without timeout would retry for ever: a ConfigurationError."""
    with pytest.raises(hazina.ConfigurationError, match=r"retry 'dep'.*attempts.*timeout"):
        registry.retry("dep", attempts=None)


@pytest.mark.parametrize(
    ("config", "param"),
    [
        ({"retry_after": 5}, "retry_after"),
        ({"retry_after": "Retry-After"}, "retry_after"),
        ({"attempts": None, "timeout": None}, "attempts"),
        ({"attempts": 0}, "attempts"),
        ({"attempts": 2.5}, "attempts"),
        ({"budget": ""}, "budget"),
        ({"budget": 3}, "budget"),
        ({"timeout": datetime.timedelta(seconds=-1)}, "timeout"),
    ],
)
def test_bad_new_parameters_fail_at_decoration_time(
    registry: hazina.Registry, config: dict[str, Any], param: str
) -> None:
    """Each bad value is a ConfigurationError naming the policy and the parameter."""
    with pytest.raises(hazina.ConfigurationError, match=rf"retry 'dep'.*{param}"):
        hazina.retry("dep", registry=registry, **config)(lambda: None)


def test_timedelta_durations_configure_the_same_policy_as_seconds(
    registry: hazina.Registry,
) -> None:
    """timeout/initial/max_delay as timedeltas equal the same numbers of seconds."""
    by_delta = registry.retry(
        "dep",
        timeout=datetime.timedelta(minutes=1),
        initial=datetime.timedelta(milliseconds=500),
        max_delay=datetime.timedelta(seconds=5),
    )

    assert registry.retry("dep", timeout=60, initial=0.5, max_delay=5) is by_delta
    assert by_delta.config.timeout == 60.0


# -- the block form -------------------------------------------------------------------------


def test_block_succeeding_at_once_runs_once(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock, events: list[object]
) -> None:
    """A block that does not raise runs once, waits for nothing and counts one success."""
    assert run_block(flavor, registry, lambda: None) == [1]

    assert clock.sleeps == []
    assert events == []
    assert registry.retry("dep").stats() == hazina.RetryStats(
        calls=1, attempts=1, retries=0, successes=1, successes_after_retry=0, give_ups=0
    )


def test_block_is_retried_until_it_succeeds(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """A raising block runs again after the policy's wait, numbering its attempts."""
    dependency = Sequence(ConnectionError(), ConnectionError(), "ok")

    assert run_block(flavor, registry, dependency, attempts=3, jitter=None, initial=1) == [1, 2, 3]
    assert clock.sleeps == [1.0, 2.0]


def test_block_gives_up_with_the_last_error_and_a_note(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """Out of attempts, the block's own last error leaves the loop with the give-up note."""
    errors = [ConnectionError("1"), ConnectionError("2")]
    with pytest.raises(ConnectionError) as raised:
        run_block(flavor, registry, Sequence(*errors), attempts=2, jitter=None)

    assert raised.value is errors[1]
    assert raised.value.__notes__ == ["hazina: retry 'dep' gave up after 2 attempts in 1.000s"]


def test_block_lets_an_error_outside_on_through_at_once(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """An error the policy does not retry propagates from the first attempt, without a note."""
    dependency = Sequence(KeyError("no"))
    with pytest.raises(KeyError) as raised:
        run_block(flavor, registry, dependency, on=ConnectionError)

    assert dependency.calls == 1
    assert not hasattr(raised.value, "__notes__")
    assert registry.retry("dep").stats().calls == 1


def test_block_stats_and_events_equal_the_decorator_s(flavor: Flavor, clock: FakeClock) -> None:
    """The same outcomes through the block and through the decorator give equal stats
    and equal events."""
    outcomes: list[list[object]] = [
        ["ok"],
        [ConnectionError("a"), "ok"],
        [ConnectionError("b"), ConnectionError("c"), ConnectionError("d")],
    ]
    results: dict[str, tuple[hazina.RetryStats, list[tuple[str, int, float]]]] = {}
    for form in ("block", "decorator"):
        registry = hazina.Registry(clock=clock)
        seen: list[object] = []
        registry.subscribe(seen.append)
        for script in outcomes:
            # Fresh error objects per form, so a note from one form never shows in the other.
            dependency = Sequence(
                *[ConnectionError(*o.args) if isinstance(o, Exception) else o for o in script]
            )
            config: dict[str, Any] = {"attempts": 3, "jitter": None}
            try:
                if form == "block":
                    run_block(flavor, registry, dependency, **config)
                else:
                    flavor.call(decorated(flavor, registry, dependency, **config))
            except ConnectionError:
                pass
        results[form] = (
            registry.retry("dep").stats(),
            [
                (
                    type(event).__name__,
                    getattr(event, "attempt", getattr(event, "attempts", 0)),
                    getattr(event, "wait", 0.0),
                )
                for event in seen
            ],
        )

    assert results["block"] == results["decorator"]
    assert results["block"][0] == hazina.RetryStats(
        calls=3, attempts=6, retries=3, successes=2, successes_after_retry=1, give_ups=1
    )


def test_block_without_with_counts_a_success(registry: hazina.Registry) -> None:
    """An attempt the loop body never enters as a context manager ends the loop as a success."""
    seen = [attempt.number for attempt in hazina.retrying("dep", registry=registry)]

    assert seen == [1]
    assert registry.retry("dep").stats().successes == 1


def test_block_break_after_success_counts_once(registry: hazina.Registry) -> None:
    """Leaving the loop with break (or return) inside the block is a plain success."""
    for attempt in hazina.retrying("dep", registry=registry):
        with attempt:
            break

    assert registry.retry("dep").stats().successes == 1


def test_block_uses_the_registry_s_policy_of_that_name(registry: hazina.Registry) -> None:
    """retrying() gets or creates the named policy, refusing a different configuration."""
    policy = registry.retry("dep", attempts=5)

    assert hazina.retrying("dep", registry=registry).policy is policy
    assert hazina.retrying("dep", registry=registry, attempts=5).policy is policy
    with pytest.raises(hazina.ConfigurationError, match="attempts"):
        hazina.retrying("dep", registry=registry, attempts=2)


def test_block_iterated_twice_is_two_calls(registry: hazina.Registry) -> None:
    """One Retrying object runs a fresh call each time it is iterated."""
    retrying = hazina.retrying("dep", registry=registry)
    for _ in range(2):
        for attempt in retrying:
            with attempt:
                pass

    assert registry.retry("dep").stats().calls == 2


def test_block_interrupted_during_a_wait_counts_once(registry: hazina.Registry) -> None:
    """An interrupt while waiting between attempts ends the loop, counted as one call."""

    class InterruptingClock(FakeClock):
        def sleep(self, seconds: float) -> None:
            raise KeyboardInterrupt

    registry = hazina.Registry(clock=InterruptingClock())

    def block() -> None:
        for attempt in hazina.retrying("dep", registry=registry):
            with attempt:
                raise ConnectionError

    with pytest.raises(KeyboardInterrupt):
        block()

    assert registry.retry("dep").stats() == hazina.RetryStats(
        calls=1, attempts=1, retries=0, successes=0, successes_after_retry=0, give_ups=0
    )
