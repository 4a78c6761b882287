"""Hedge: delayed extra attempts, the first success wins, losers cancelled or dropped.

Each scenario runs sync (attempts on worker threads) and async (the first attempt in
the caller's task, hedges as tasks) through the ``flavor`` fixture, on a registry
whose clock is fake: hedge delays run on real time whatever the registry's clock, so
these tests use small real delays, which are the point of a hedge. Attempts are
scripted (:mod:`.dependency`): one that "holds" runs until released or cancelled.
"""

from __future__ import annotations

import logging
import re
import time
from typing import TYPE_CHECKING, Any

import pytest

import hazina
from hazina.testing import instant_waits

from .dependency import REQUEST_ID, Dependency, Hold, Raise, Return

if TYPE_CHECKING:
    from collections.abc import Iterator

    from conftest import Flavor

Hedged = hazina.Decorated[..., Any, hazina.Hedge]

#: Long enough that a call which should not wait for it visibly does not.
LONG = 2.0
#: Short enough to keep tests fast, long enough for an attempt to start first.
SHORT = 0.03


@pytest.fixture
def dependencies() -> Iterator[list[Dependency]]:
    """Dependencies made by the test; every attempt is released and ended afterwards."""
    made: list[Dependency] = []
    yield made
    for dependency in made:
        dependency.wait_until_ended()


@pytest.fixture
def hedged(flavor: Flavor, registry: hazina.Registry, dependencies: list[Dependency]) -> Any:
    """Make a hedged operation over a scripted dependency: ``hedged(script, **config)``."""

    def make(*script: Any, name: str = "h", **config: Any) -> tuple[Hedged, Dependency]:
        dependency = Dependency(*script)
        dependencies.append(dependency)
        target = dependency.asynchronous() if flavor.is_async else dependency.sync()
        decorate: Any = hazina.hedge(name, registry=registry, **config)
        fn: Hedged = decorate(target)
        return fn, dependency

    return make


def timed(flavor: Flavor, fn: Hedged, *args: Any) -> tuple[Any, float]:
    """Call ``fn``; its result and how long the call took, in real seconds."""
    started = time.monotonic()
    result = flavor.call(fn, *args)
    return result, time.monotonic() - started


def stats(calls: int, hedges: int, hedge_wins: int) -> hazina.HedgeStats:
    return hazina.HedgeStats(calls=calls, hedges=hedges, hedge_wins=hedge_wins)


# -- racing -------------------------------------------------------------------------------


def test_a_fast_first_attempt_starts_no_hedge(
    flavor: Flavor, hedged: Any, events: list[object]
) -> None:
    """A result within the delay is returned; no other attempt starts, even later."""
    fn, dependency = hedged(Return("first"), delay=SHORT)

    assert flavor.call(fn) == "first"
    time.sleep(2 * SHORT)
    assert len(dependency.attempts) == 1
    assert fn.policy.stats() == stats(calls=1, hedges=0, hedge_wins=0)
    assert events == []


def test_a_slow_first_attempt_is_hedged_and_the_hedge_wins(
    flavor: Flavor, hedged: Any, events: list[object]
) -> None:
    """After the delay a second attempt starts; its result returns without waiting
    for the first, which is cancelled (async) or left to finish unheard (sync)."""
    fn, dependency = hedged(Hold("first"), Return("second"), delay=SHORT)

    result, took = timed(flavor, fn)

    assert result == "second"
    assert SHORT <= took < LONG
    assert fn.policy.stats() == stats(calls=1, hedges=1, hedge_wins=1)
    assert events == [hazina.HedgeStarted("h", 1, None)]
    first = dependency.attempts[0]
    if flavor.is_async:
        assert first.cancelled
        assert first.ended
    else:
        assert not first.ended  # still running: a thread cannot be stopped


def test_the_first_attempt_can_still_win_after_a_hedge_started(flavor: Flavor, hedged: Any) -> None:
    """A first attempt that ends before the hedge wins, and the hedge is the loser."""
    fn, dependency = hedged(Return("first", after=3 * SHORT), Hold("second"), delay=SHORT)

    assert flavor.call(fn) == "first"
    assert fn.policy.stats() == stats(calls=1, hedges=1, hedge_wins=0)
    if flavor.is_async:
        assert dependency.attempts[1].cancelled


def test_up_to_max_hedges_start_one_delay_apart(
    flavor: Flavor, hedged: Any, events: list[object]
) -> None:
    """With ``max_hedges=2`` a third attempt starts a delay after the second; no more."""
    fn, _dependency = hedged(Hold(), Hold(), Return("third"), delay=SHORT, max_hedges=2)

    result, took = timed(flavor, fn)

    assert result == "third"
    assert 2 * SHORT <= took < LONG
    assert [event.hedge for event in events] == [1, 2]  # type: ignore[attr-defined]
    assert fn.policy.stats() == stats(calls=1, hedges=2, hedge_wins=1)


def test_a_failed_attempt_starts_the_next_at_once(
    flavor: Flavor, hedged: Any, events: list[object]
) -> None:
    """An error matching ``on`` starts the next attempt without waiting for the delay."""
    error = ConnectionError("reset")
    fn, _ = hedged(Raise(error), Return("second"), delay=LONG)

    result, took = timed(flavor, fn)

    assert result == "second"
    assert took < LONG / 2
    assert events == [hazina.HedgeStarted("h", 1, error)]


def test_an_error_outside_on_is_raised_at_once(flavor: Flavor, hedged: Any) -> None:
    """An attempt raising an error that ``on`` does not match ends the call with it at
    once, and the attempts still running are cancelled (async)."""
    fn, dependency = hedged(Hold(), Raise(ValueError("bad input")), delay=SHORT, on=OSError)

    with pytest.raises(ValueError, match="bad input"):
        timed(flavor, fn)
    if flavor.is_async:
        assert dependency.attempts[0].cancelled


def test_a_first_error_outside_on_is_raised_without_hedging(flavor: Flavor, hedged: Any) -> None:
    """A first attempt failing outside ``on`` is raised as it is; nothing else starts."""
    fn, dependency = hedged(Raise(KeyError("k")), delay=SHORT, on=OSError)

    with pytest.raises(KeyError):
        flavor.call(fn)
    time.sleep(2 * SHORT)
    assert len(dependency.attempts) == 1
    assert fn.policy.stats() == stats(calls=1, hedges=0, hedge_wins=0)


def broken_on(error: BaseException) -> bool:
    """An ``on`` predicate that fails on KeyError."""
    if isinstance(error, KeyError):
        raise RuntimeError("the predicate broke")
    return True


@pytest.mark.parametrize(
    "script",
    [
        (Raise(KeyError("k"), after=3 * SHORT), Hold()),  # the first attempt's error
        (Hold(), Raise(KeyError("k"))),  # a hedge's error
    ],
    ids=["first", "hedge"],
)
def test_an_on_predicate_that_raises_ends_the_call_with_its_error(
    flavor: Flavor, hedged: Any, script: tuple[Any, ...]
) -> None:
    """Regression: a raising ``on`` left the async hedges running after the call had
    raised (for the first attempt's error), or was only logged by the event loop while
    the call went on waiting for the attempt still held (for a hedge's error). Its
    error now ends the call at once, like an error outside ``on``, and the attempts
    still running are cancelled (async) before the call returns."""
    fn, dependency = hedged(*script, delay=SHORT, on=broken_on)

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="the predicate broke"):
        flavor.call(fn)
    assert time.monotonic() - started < LONG / 2
    if flavor.is_async:
        held = 1 if isinstance(script[1], Hold) else 0
        assert dependency.attempts[held].cancelled


class Interrupted(BaseException):
    """Not an ``Exception``: no hedge may take its place."""


def test_errors_that_are_not_exceptions_are_raised_whatever_on_says(
    flavor: Flavor, hedged: Any
) -> None:
    """Even with ``on=BaseException``, an interrupt is raised, never hedged around."""
    fn, dependency = hedged(Raise(Interrupted()), Return("second"), delay=LONG, on=BaseException)

    with pytest.raises(Interrupted):
        flavor.call(fn)
    assert len(dependency.attempts) == 1


def test_when_every_attempt_fails_the_first_error_is_raised_with_a_note(
    flavor: Flavor, hedged: Any
) -> None:
    """The first attempt's error is raised, whichever failed last, with a note that
    names the policy and what the others raised."""
    first = ConnectionError("first down")
    fn, _ = hedged(
        Raise(first, after=3 * SHORT),
        Raise(TimeoutError("second slow")),
        Raise(ConnectionError("third down")),
        delay=SHORT,
        max_hedges=2,
    )

    with pytest.raises(ConnectionError) as caught:
        flavor.call(fn)

    assert caught.value is first
    (note,) = caught.value.__notes__
    assert "hedge 'h'" in note
    assert "all 3 attempts failed" in note
    assert "TimeoutError('second slow')" in note
    assert "ConnectionError('third down')" in note


def test_the_delay_may_be_computed_per_call(flavor: Flavor, hedged: Any) -> None:
    """A callable delay is read once per call."""
    delays = iter([LONG, SHORT])
    fn, _ = hedged(Return("a", after=2 * SHORT), Hold(), Hold(), delay=lambda: next(delays))

    assert flavor.call(fn) == "a"  # within the long delay: no hedge
    assert fn.policy.stats().hedges == 0


@pytest.mark.parametrize("delay", [-1, float("nan"), "1", None])
def test_a_computed_delay_that_is_no_duration_is_a_value_error(
    flavor: Flavor, hedged: Any, delay: object
) -> None:
    """A callable delay returning no usable number raises ``ValueError`` naming the
    policy and the value, before any attempt runs."""
    fn, dependency = hedged(Return("a"), name="flaky-delay", delay=lambda: delay)

    with pytest.raises(
        ValueError, match=re.escape(f"hedge 'flaky-delay': delay() returned {delay!r}")
    ):
        flavor.call(fn)
    assert dependency.attempts == []


# -- time, context, methods -----------------------------------------------------------


def test_delays_run_on_real_time_even_with_instant_waits(
    flavor: Flavor, hedged: Any, clock: hazina.Clock
) -> None:
    """Neither the registry's fake clock nor ``instant_waits()`` hurries a hedge: a
    first attempt well within the delay is never hedged."""
    fn, dependency = hedged(Return("first", after=SHORT), Hold(), delay=LONG)

    with instant_waits():
        assert flavor.call(fn) == "first"
    assert len(dependency.attempts) == 1


def test_attempts_see_the_callers_context_and_do_not_change_it(flavor: Flavor, hedged: Any) -> None:
    """Context variables reach every attempt (worker threads included); what a hedge
    sets stays in its own copy."""
    fn, dependency = hedged(Hold(), Return("second"), delay=SHORT)

    def call() -> Any:
        REQUEST_ID.set("request-7")
        return fn()

    if flavor.is_async:

        async def acall() -> Any:
            REQUEST_ID.set("request-7")
            result = await fn()
            return result, REQUEST_ID.get()

        result, after = flavor.call(acall)
    else:
        import contextvars

        context = contextvars.copy_context()
        result = context.run(call)
        after = context[REQUEST_ID]

    assert result == "second"
    assert [attempt.request_id for attempt in dependency.attempts] == ["request-7"] * 2
    # The async first attempt runs in the caller's own task, as an undecorated call does.
    assert after == ("changed by attempt 0" if flavor.is_async else "request-7")


def test_sync_attempts_run_on_worker_threads(
    registry: hazina.Registry, dependencies: list[Dependency]
) -> None:
    """Sync attempts, the first included, run on hazina's worker threads."""
    dependency = Dependency(Hold(), Return("second"))
    dependencies.append(dependency)
    fn = hazina.hedge("h", registry=registry, delay=SHORT)(dependency.sync())

    assert fn() == "second"
    assert {attempt.thread for attempt in dependency.attempts} == {"hazina-hedge"}


def test_methods_are_hedged(flavor: Flavor, registry: hazina.Registry) -> None:
    """A hedged method gets its instance in every attempt."""
    seen: list[object] = []

    def body(self: object, x: int) -> int:
        seen.append(self)
        return x

    class Service:
        get = hazina.hedge("h", registry=registry, delay=LONG)(flavor.define(body))

    service = Service()
    assert flavor.call(service.get, 5) == 5
    assert seen == [service]


# -- stats, registry, configuration -------------------------------------------------------


def test_stats_in_the_registry_and_reset(
    flavor: Flavor, hedged: Any, registry: hazina.Registry
) -> None:
    """The registry reports each hedge policy's stats, plain in the snapshot; reset zeroes."""
    fn, _ = hedged(Hold(), Return("second"), delay=SHORT)

    flavor.call(fn)

    assert registry.stats()["hedge"] == {"h": stats(calls=1, hedges=1, hedge_wins=1)}
    assert registry.snapshot()["hedge"] == {"h": {"calls": 1, "hedges": 1, "hedge_wins": 1}}
    assert registry.hedge("h") is fn.policy
    registry.reset()
    assert fn.policy.stats() == stats(calls=0, hedges=0, hedge_wins=0)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {},
            "delay must be given: a number of seconds (0 to threading.TIMEOUT_MAX), or a callable "
            "returning one, got nothing",
        ),
        ({"delay": -0.1}, "got -0.1"),
        ({"delay": float("inf")}, "got inf"),
        ({"delay": True}, "got True"),
        ({"delay": "1s"}, "got '1s'"),
        ({"delay": float}, "got <class 'float'>"),
        ({"delay": 1, "max_hedges": 0}, "max_hedges must be a whole number of 1 or more, got 0"),
        ({"delay": 1, "max_hedges": 1.5}, "got 1.5"),
        ({"delay": 1, "max_hedges": True}, "got True"),
        ({"delay": 1, "on": "OSError"}, "on must be an exception type"),
        ({"delay": 1, "hedges": 2}, "unknown parameter 'hedges'; did you mean 'max_hedges'?"),
    ],
)
def test_bad_configuration_is_refused_at_decoration(
    registry: hazina.Registry, config: dict[str, Any], message: str
) -> None:
    """Each bad value gives a ``ConfigurationError`` naming the policy and the value."""
    with pytest.raises(hazina.ConfigurationError) as caught:
        hazina.hedge("search-hedge", registry=registry, **config)(lambda: None)
    assert "hedge 'search-hedge'" in str(caught.value)
    assert message in str(caught.value)
    assert len(registry) == 0


def test_a_different_configuration_for_a_name_is_refused(registry: hazina.Registry) -> None:
    """Asking for an existing name with another delay is refused; the same config is not."""
    policy = registry.hedge("h", delay=0.1)

    assert registry.hedge("h", delay=0.1, max_hedges=1) is policy
    with pytest.raises(hazina.ConfigurationError, match=r"delay=0\.1 \(asked for 0\.2\)"):
        registry.hedge("h", delay=0.2)


def test_a_hedge_started_is_logged_at_debug(
    flavor: Flavor, hedged: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Each extra attempt is one DEBUG record on ``hazina.hedge`` naming the policy."""
    fn, _ = hedged(Hold(), Return("second"), name="search", delay=SHORT)

    with caplog.at_level(logging.DEBUG, logger="hazina.hedge"):
        flavor.call(fn)

    (record,) = caplog.records
    assert record.levelno == logging.DEBUG
    assert record.hazina_name == "search"  # type: ignore[attr-defined]
    assert record.hazina_hedge == 1  # type: ignore[attr-defined]
    assert record.hazina_error is None  # type: ignore[attr-defined]  # after the delay
