"""The recommended stack, sync and async: ``@retry`` over ``@circuit_breaker``, and the
docs' full stack with ``@rate_limited`` and ``@cached`` above them.

With retry outside, every attempt goes through the breaker (so the breaker sees the
real failure rate), and a rejection's ``retry_after`` tells the retry how long to wait
before the breaker will admit a probe. Both policies share one registry and fake clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

import hazina
from hazina import CircuitState
from hazina.testing import FakeClock, instant_waits

if TYPE_CHECKING:
    from collections.abc import Iterator

    from conftest import Flavor

RETRY = "calls"
BREAKER = "dependency"


class Dependency:
    """A dependency that fails its first ``failures`` calls (or while ``down`` says so)."""

    def __init__(self, failures: int = 0, down: Callable[[], bool] | None = None) -> None:
        self.failures = failures
        self.down = down
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures or (self.down is not None and self.down()):
            raise ConnectionError(f"down (call {self.calls})")
        return "ok"


def stack(
    flavor: Flavor,
    registry: hazina.Registry,
    dependency: Dependency,
    *,
    retry: dict[str, Any],
    breaker: dict[str, Any],
) -> tuple[hazina.Decorated[..., Any, hazina.Retry], hazina.CircuitBreaker]:
    """``dependency`` under a breaker under a retry; the outer function and the breaker."""
    decorate_retry: Any = hazina.retry(RETRY, registry=registry, **retry)
    decorate_breaker: Any = hazina.circuit_breaker(BREAKER, registry=registry, **breaker)

    # The same as writing @retry(...) above @circuit_breaker(...) above the def.
    guarded = decorate_breaker(flavor.define(dependency))
    outer: hazina.Decorated[..., Any, hazina.Retry] = decorate_retry(guarded)
    assert outer.policy is registry.retry(RETRY)
    assert guarded.policy is registry.circuit_breaker(BREAKER)
    return outer, registry.circuit_breaker(BREAKER)


def of_type(events: list[object], kind: type[Any]) -> list[Any]:
    """The events of one type, in order."""
    return [event for event in events if isinstance(event, kind)]


def transitions(events: list[object]) -> list[tuple[CircuitState, CircuitState]]:
    """The breaker's state changes, as (old, new) pairs."""
    return [(event.old, event.new) for event in of_type(events, hazina.CircuitStateChanged)]


def assert_every_attempt_seen(
    outer: hazina.Decorated[..., Any, hazina.Retry],
    breaker: hazina.CircuitBreaker,
    dependency: Dependency,
) -> None:
    """Each retry attempt was either admitted and completed by the breaker, or rejected by it."""
    retry_stats, breaker_stats = outer.policy.stats(), breaker.stats()
    assert breaker_stats.calls == retry_stats.attempts - breaker_stats.rejections
    assert breaker_stats.calls == dependency.calls


@pytest.fixture(autouse=True)
def real_waits() -> Iterator[None]:
    """Run each test with real (clock) waits, and put the switch back as it was afterwards."""
    with instant_waits(False):
        yield


def test_retry_waits_out_an_open_breaker_and_the_next_attempt_is_a_probe(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock, events: list[object]
) -> None:
    """The breaker opens mid-retry; the retry waits ``retry_after`` and its next attempt probes."""
    dependency = Dependency(failures=2)
    outer, breaker = stack(
        flavor,
        registry,
        dependency,
        retry={"attempts": 5, "backoff": "fixed", "initial": 0.5, "jitter": None},
        breaker={"failure_threshold": 2, "open_for": 10, "success_threshold": 1},
    )

    assert flavor.call(outer) == "ok"

    # 1000.0 fail, wait 0.5; 1000.5 fail (opens), wait 0.5; 1001.0 rejected: 9.5 s to go.
    rejected = of_type(events, hazina.CallRejected)
    assert rejected == [hazina.CallRejected(BREAKER, CircuitState.OPEN, 9.5)]
    third = of_type(events, hazina.RetryScheduled)[2]
    assert isinstance(third.error, hazina.CircuitOpenError)
    assert third.error.retry_after == 9.5
    assert third.wait >= third.error.retry_after
    assert clock.sleeps == [0.5, 0.5, 9.5]
    assert clock.now() == 1010.5

    # The fourth attempt was admitted as the half-open probe and its success closed it.
    assert transitions(events) == [
        (CircuitState.CLOSED, CircuitState.OPEN),
        (CircuitState.OPEN, CircuitState.HALF_OPEN),
        (CircuitState.HALF_OPEN, CircuitState.CLOSED),
    ]
    assert events.index(third) < events.index(
        next(
            e for e in events if isinstance(e, hazina.CircuitStateChanged) and e.new == "half_open"
        )
    )
    assert dependency.calls == 3
    assert outer.policy.stats() == hazina.RetryStats(
        calls=1, attempts=4, retries=3, successes=1, successes_after_retry=1, give_ups=0
    )
    breaker_stats = breaker.stats()
    assert breaker_stats.state == CircuitState.CLOSED
    assert (breaker_stats.calls, breaker_stats.failures, breaker_stats.successes) == (3, 2, 1)
    assert breaker_stats.rejections == 1
    assert_every_attempt_seen(outer, breaker, dependency)


def test_retry_with_default_jitter_waits_at_least_retry_after(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock, events: list[object]
) -> None:
    """With jittered backoff, the wait after a rejection is still at least its ``retry_after``."""
    for _ in range(20):
        dependency = Dependency(failures=2)
        registry.reset()
        outer, breaker = stack(
            flavor,
            registry,
            dependency,
            retry={"attempts": 4, "initial": 0.5},
            breaker={"failure_threshold": 2, "open_for": 10, "success_threshold": 1},
        )
        start = len(events)

        assert flavor.call(outer) == "ok"

        after_rejection = [
            event
            for event in of_type(events[start:], hazina.RetryScheduled)
            if isinstance(event.error, hazina.CircuitOpenError)
        ]
        assert len(after_rejection) == 1
        error = after_rejection[0].error
        assert error.retry_after is not None
        assert after_rejection[0].wait >= error.retry_after > 9.0
        assert clock.sleeps[-1] == after_rejection[0].wait
        assert dependency.calls == 3
        assert breaker.stats().state == CircuitState.CLOSED
        assert_every_attempt_seen(outer, breaker, dependency)


def test_retry_gives_up_when_the_breaker_asks_for_more_than_max_delay(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock, events: list[object]
) -> None:
    """A rejection whose ``retry_after`` exceeds ``max_delay`` is re-raised at once, noted."""
    dependency = Dependency(failures=10)
    outer, breaker = stack(
        flavor,
        registry,
        dependency,
        retry={"attempts": 5, "backoff": "fixed", "initial": 1, "jitter": None, "max_delay": 5},
        breaker={"failure_threshold": 2, "open_for": 60},
    )

    with pytest.raises(hazina.CircuitOpenError) as raised:
        flavor.call(outer)

    # 1000 fail, wait 1; 1001 fail (opens); wait 1; 1002 rejected for 59 s > 5 s: give up.
    error = raised.value
    assert type(error) is hazina.CircuitOpenError
    assert error.name == BREAKER
    assert error.retry_after == 59.0
    assert clock.sleeps == [1.0, 1.0]
    notes = getattr(error, "__notes__", [])
    assert len(notes) == 1
    assert RETRY in notes[0]
    assert "3 attempts" in notes[0]
    assert of_type(events, hazina.RetryGaveUp) == [hazina.RetryGaveUp(RETRY, 3, 2.0, error)]
    assert outer.policy.stats() == hazina.RetryStats(
        calls=1, attempts=3, retries=2, successes=0, successes_after_retry=0, give_ups=1
    )
    breaker_stats = breaker.stats()
    assert breaker_stats.state == CircuitState.OPEN
    assert (breaker_stats.calls, breaker_stats.failures, breaker_stats.rejections) == (2, 2, 1)
    assert dependency.calls == 2
    assert_every_attempt_seen(outer, breaker, dependency)


def test_a_call_meeting_an_open_breaker_gives_up_without_waiting(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """A breaker already open for longer than ``max_delay`` ends the call at one rejection."""
    dependency = Dependency(failures=2)
    outer, breaker = stack(
        flavor,
        registry,
        dependency,
        retry={"attempts": 2, "backoff": "fixed", "initial": 1, "jitter": None, "max_delay": 5},
        breaker={"failure_threshold": 2, "open_for": 60},
    )
    with pytest.raises(ConnectionError):
        flavor.call(outer)  # two failures: the breaker opens
    assert breaker.stats().state == CircuitState.OPEN
    clock.sleeps.clear()

    with pytest.raises(hazina.CircuitOpenError) as raised:
        flavor.call(outer)

    assert clock.sleeps == []
    assert len(getattr(raised.value, "__notes__", [])) == 1
    assert outer.policy.stats().give_ups == 2
    assert outer.policy.stats().attempts == 3
    assert breaker.stats().rejections == 1
    assert dependency.calls == 2
    assert_every_attempt_seen(outer, breaker, dependency)


def test_a_forced_open_breaker_is_retried_on_the_normal_backoff(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """Rejections without ``retry_after`` (forced open) leave the retry's own backoff in charge."""
    dependency = Dependency()
    outer, breaker = stack(
        flavor,
        registry,
        dependency,
        retry={"attempts": 3, "jitter": None},
        breaker={},
    )
    breaker.force_open()

    with pytest.raises(hazina.CircuitOpenError) as raised:
        flavor.call(outer)

    assert raised.value.retry_after is None
    assert clock.sleeps == [1.0, 2.0]
    assert dependency.calls == 0
    assert breaker.stats().rejections == 3
    assert outer.policy.stats().give_ups == 1
    assert_every_attempt_seen(outer, breaker, dependency)


def test_the_breaker_sees_every_attempt(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """Each retried failure reaches the breaker: it counts attempts, not calls."""
    dependency = Dependency()
    outer, breaker = stack(
        flavor,
        registry,
        dependency,
        retry={"attempts": 3, "jitter": None},
        breaker={"minimum_calls": 50},
    )

    for _ in range(10):
        dependency.calls, dependency.failures = 0, 1
        assert flavor.call(outer) == "ok"

    retry_stats, breaker_stats = outer.policy.stats(), breaker.stats()
    assert retry_stats.calls == 10
    assert retry_stats.attempts == 20
    assert breaker_stats.calls == 20
    assert (breaker_stats.failures, breaker_stats.successes) == (10, 10)
    assert breaker_stats.rejections == 0
    assert breaker_stats.state == CircuitState.CLOSED


def test_attempts_split_into_admitted_and_rejected_over_an_outage(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock, events: list[object]
) -> None:
    """Over an outage and recovery, every attempt is either completed or rejected by the breaker."""
    dependency = Dependency(down=lambda: clock.now() < 1030.0)
    outer, breaker = stack(
        flavor,
        registry,
        dependency,
        retry={"attempts": 4, "backoff": "fixed", "initial": 1, "jitter": None, "max_delay": 60},
        breaker={"failure_threshold": 3, "open_for": 5, "success_threshold": 1},
    )

    outcomes = []
    for _ in range(8):
        try:
            outcomes.append(flavor.call(outer))
        except (ConnectionError, hazina.CircuitOpenError) as error:
            outcomes.append(type(error).__name__)
        clock.advance(1)

    # Call 1 opens the breaker and meets it; calls 2-3 probe too early and reopen it.
    assert outcomes == ["CircuitOpenError"] + ["ConnectionError"] * 2 + ["ok"] * 5
    assert breaker.stats().rejections == 7
    assert outer.policy.stats().attempts == 20
    assert CircuitState.HALF_OPEN in {new for _, new in transitions(events)}
    assert_every_attempt_seen(outer, breaker, dependency)
    # Every wait after a rejection covered its retry_after.
    for event in of_type(events, hazina.RetryScheduled):
        if isinstance(event.error, hazina.CircuitOpenError):
            assert event.wait >= event.error.retry_after


# -- the full recommended stack ------------------------------------------------------


def full_stack(
    flavor: Flavor, registry: hazina.Registry, dependency: Callable[[str, str], list[str]]
) -> Any:
    """rate_limited > cached > retry > circuit_breaker around ``dependency`` (docs: stacking)."""
    layers: list[Any] = [
        hazina.rate_limited(
            "search", registry=registry, rate=10, per=1.0, burst=3, key=lambda user, q: user
        ),
        hazina.cached("search", registry=registry, ttl=300),
        hazina.retry("search-backend", registry=registry, attempts=3, jitter=None),
        hazina.circuit_breaker(
            "search-backend", registry=registry, failure_threshold=3, open_for=30
        ),
    ]
    fn: Any = flavor.define(dependency)
    for layer in reversed(layers):
        fn = layer(fn)
    return fn


def test_full_stack_hits_skip_retry_and_breaker(flavor: Flavor, registry: hazina.Registry) -> None:
    """In the full stack a cache hit reaches neither retry nor breaker, and a miss does."""
    seen: list[str] = []

    def backend(user: str, q: str) -> list[str]:
        seen.append(q)
        return [q, q]

    search = full_stack(flavor, registry, backend)

    assert flavor.call(search, "alice", "cats") == ["cats", "cats"]
    assert flavor.call(search, "alice", "cats") == ["cats", "cats"]  # a hit
    assert seen == ["cats"]
    stats = registry.stats()
    assert stats["cache"]["search"].hits == 1
    assert stats["retry"]["search-backend"].calls == 1
    assert stats["circuit_breaker"]["search-backend"].calls == 1
    assert stats["rate_limiter"]["search"].allowed == 2


def test_full_stack_rate_limit_refuses_before_anything_else(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """Over the user's limit the call is refused outright: no cache lookup, no attempt."""
    search = full_stack(flavor, registry, lambda user, q: [q])
    for n in range(3):
        flavor.call(search, "alice", f"q{n}")

    with pytest.raises(hazina.RateLimitExceeded) as refused:
        flavor.call(search, "alice", "q0")  # would be a cache hit, but the limit comes first

    assert refused.value.key == "alice"
    assert registry.stats()["cache"]["search"].hits == 0
    assert flavor.call(search, "bob", "q0") == ["q0"]  # bob's bucket is his own


def test_full_stack_failed_loads_are_retried_not_cached(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """A load that fails twice and then succeeds is retried inside the cache and cached once."""
    failures = iter([ConnectionError("1"), TimeoutError("2")])

    def backend(user: str, q: str) -> list[str]:
        error = next(failures, None)
        if error is not None:
            raise error
        return [q]

    search = full_stack(flavor, registry, backend)

    assert flavor.call(search, "alice", "cats") == ["cats"]
    assert flavor.call(search, "alice", "cats") == ["cats"]  # now from the cache
    stats = registry.stats()
    assert stats["retry"]["search-backend"].successes_after_retry == 1
    assert stats["circuit_breaker"]["search-backend"].failures == 2
    assert (stats["cache"]["search"].loads, stats["cache"]["search"].hits) == (1, 1)
    assert clock.sleeps == [1.0, 2.0]  # the retry's exponential waits, on the fake clock


# -- fallback outermost, hedge above retry and breaker ---------------------------------


def test_fallback_outermost_answers_whatever_failed_below(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """With ``@fallback`` over the stack, a retry that gave up and an open breaker both
    become the fallback's answer, and every failed attempt still reached the breaker."""
    dependency = Dependency(down=lambda: True)
    outer, breaker = stack(
        flavor,
        registry,
        dependency,
        # max_delay below open_for: the retry gives up at once on the open breaker.
        retry={"attempts": 2, "backoff": "fixed", "initial": 0.1, "jitter": None, "max_delay": 1},
        breaker={"failure_threshold": 2, "open_for": 30},
    )
    degraded: Any = hazina.fallback("degraded", registry=registry, value="stale")(outer)

    assert flavor.call(degraded) == "stale"  # two failures: the breaker opens
    assert breaker.state == CircuitState.OPEN
    assert flavor.call(degraded) == "stale"  # rejected by the open breaker
    assert degraded.policy.stats() == hazina.FallbackStats(calls=2, fallbacks=2)
    assert dependency.calls == 2
    assert_every_attempt_seen(outer, breaker, dependency)


def test_hedge_over_retry_and_breaker_gives_each_attempt_its_own_retries(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """With ``@hedge`` above retry and breaker, an attempt failing fast is retried
    inside its own attempt, and the breaker sees every one."""
    dependency = Dependency(failures=1)
    outer, breaker = stack(
        flavor,
        registry,
        dependency,
        retry={"attempts": 2, "backoff": "fixed", "initial": 0.1, "jitter": None},
        breaker={"failure_threshold": 5},
    )
    hedged: Any = hazina.hedge("hedged", registry=registry, delay=5.0)(outer)

    assert flavor.call(hedged) == "ok"
    assert hedged.policy.stats() == hazina.HedgeStats(calls=1, hedges=0, hedge_wins=0)
    assert outer.policy.stats().successes_after_retry == 1
    assert_every_attempt_seen(outer, breaker, dependency)


# -- the recommended full stack ------------------------------------------------------


def test_the_recommended_full_stack_turns_hung_attempts_into_the_fallback(
    flavor: Flavor,
) -> None:
    """fallback > rate limit > cache > retry > breaker > bulkhead > timeout > function, as
    the docs recommend: each hung attempt times out on its own deadline, is a breaker
    failure and is retried; when retries give up the fallback answers, nothing is cached,
    and a working dependency's answer is cached and served by the next call."""
    registry = hazina.Registry()
    hang = {"on": True}
    calls = 0

    def body(item: str) -> str:
        nonlocal calls
        calls += 1
        if hang["on"]:
            time.sleep(0.5)  # far past the timeout: the attempt is abandoned
        return f"price of {item}"

    async def async_body(item: str) -> str:
        nonlocal calls
        calls += 1
        if hang["on"]:
            await asyncio.sleep(0.5)  # cancelled at the deadline
        return f"price of {item}"

    fn: Any = async_body if flavor.is_async else body
    for layer in (
        hazina.timeout("price-call", registry=registry, seconds=0.05, max_abandoned=100),
        hazina.bulkhead("price-backend", registry=registry, max_concurrent=4),
        hazina.circuit_breaker("price-backend", registry=registry, failure_threshold=10),
        hazina.retry("price-backend", registry=registry, attempts=3, initial=0.01),
        hazina.cached("prices", registry=registry, ttl=60),
        hazina.rate_limited("prices", registry=registry, rate=100, per=1),
        hazina.fallback("prices", registry=registry, value="price unknown"),
    ):
        fn = layer(fn)

    with instant_waits():
        assert flavor.call(fn, "tea") == "price unknown"
        hang["on"] = False
        assert flavor.call(fn, "tea") == "price of tea"
        assert flavor.call(fn, "tea") == "price of tea"  # a cache hit

    stats = registry.stats()
    assert stats["timeout"]["price-call"].timeouts == 3
    assert stats["circuit_breaker"]["price-backend"].failures == 3
    assert stats["circuit_breaker"]["price-backend"].successes == 1
    assert stats["retry"]["price-backend"].give_ups == 1
    assert stats["fallback"]["prices"].fallbacks == 1
    assert (stats["cache"]["prices"].loads, stats["cache"]["prices"].hits) == (2, 1)
    assert stats["rate_limiter"]["prices"].allowed == 3
    assert stats["bulkhead"]["price-backend"].active == 0
    assert calls == 4
