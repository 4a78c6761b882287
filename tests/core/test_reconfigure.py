"""Reconfiguring policies at run time: validated, swapped whole, state kept where it fits.

Behavioural scenarios run sync and async through the ``flavor`` fixture.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

import hazina
from hazina.testing import FakeClock

if TYPE_CHECKING:
    from conftest import Flavor


class Down(Exception):
    """The dependency failed."""


def failing(*args: Any, **kwargs: Any) -> Any:
    raise Down


def echo(value: Any = None) -> Any:
    return value


def code_of(function: Any) -> Any:
    """The code a decorated function runs now (a reconfigure may swap it)."""
    return function.__code__


# -- the common contract ---------------------------------------------------------------


def test_a_bad_value_changes_nothing(registry: hazina.Registry, events: list[object]) -> None:
    """An invalid merged configuration raises ConfigurationError and leaves the policy as it was."""
    retry = registry.retry("api", attempts=3)
    before = retry.config
    with pytest.raises(hazina.ConfigurationError, match=r"retry 'api': attempts must be"):
        retry.reconfigure(attempts=0, max_delay=5.0)
    with pytest.raises(hazina.ConfigurationError, match=r"unknown parameter 'atempts'"):
        registry.reconfigure("retry", "api", atempts=2)
    assert retry.config is before
    assert not [event for event in events if isinstance(event, hazina.PolicyReconfigured)]


def test_decorated_functions_see_the_change_on_their_next_call(
    registry: hazina.Registry, flavor: Flavor
) -> None:
    """A function decorated before the change keeps its policy and runs under the new values."""
    calls: list[int] = []

    def body() -> None:
        calls.append(1)
        raise Down

    guarded = hazina.retry("api", attempts=3, registry=registry)(flavor.define(body))
    with pytest.raises(Down):
        flavor.call(guarded)
    assert len(calls) == 3
    registry.reconfigure("retry", "api", attempts=5)
    with pytest.raises(Down):
        flavor.call(guarded)
    assert len(calls) == 8
    assert guarded.policy is registry.get("retry", "api")


def test_reconfigure_emits_and_logs_policy_reconfigured(
    registry: hazina.Registry, events: list[object], caplog: pytest.LogCaptureFixture
) -> None:
    """PolicyReconfigured carries the kind, the name and the changes; it is logged at INFO."""
    registry.circuit_breaker("db")
    with caplog.at_level(logging.INFO, logger="hazina"):
        registry.reconfigure("circuit_breaker", "db", open_for=5)
    assert events == [hazina.PolicyReconfigured("circuit_breaker", "db", {"open_for": 5})]
    records = [(r.name, r.levelno) for r in caplog.records]
    assert records == [("hazina.circuit_breaker", logging.INFO)]
    assert "'db': PolicyReconfigured changes={'open_for': 5}" in caplog.records[0].getMessage()


def test_reconfigure_of_an_unknown_policy_is_a_key_error(registry: hazina.Registry) -> None:
    """registry.reconfigure names a policy that must exist."""
    with pytest.raises(KeyError, match="no retry named 'nope'"):
        registry.reconfigure("retry", "nope", attempts=2)


def test_derived_defaults_follow_their_parameter_unless_given(registry: hazina.Registry) -> None:
    """half_open_timeout follows a new open_for when it was never given, and stays when it was."""
    derived = registry.circuit_breaker("derived", open_for=10)
    derived.reconfigure(open_for=20)
    assert derived.config.half_open_timeout == 20
    spelled = registry.circuit_breaker("spelled", open_for=10, half_open_timeout=3)
    spelled.reconfigure(open_for=20)
    assert spelled.config.half_open_timeout == 3


def test_factory_with_the_old_values_is_refused_after_a_plain_reconfigure(
    registry: hazina.Registry,
) -> None:
    """Values set by reconfigure() do not win over code: the old values now differ, and raise."""
    registry.retry("api", attempts=3)
    registry.reconfigure("retry", "api", attempts=4)
    with pytest.raises(hazina.ConfigurationError, match="different configuration"):
        registry.retry("api", attempts=3)
    assert registry.retry("api", attempts=4).config.attempts == 4


def test_every_kind_can_be_reconfigured(registry: hazina.Registry) -> None:
    """Each kind of the registry takes a change of one of its parameters."""
    registry.health_check("disk", lambda: True)
    changes: dict[str, tuple[Callable[[], Any], dict[str, Any]]] = {
        "circuit_breaker": (lambda: registry.circuit_breaker("p"), {"open_for": 3}),
        "retry": (lambda: registry.retry("p"), {"attempts": 7}),
        "cache": (lambda: registry.cache("p"), {"ttl": 9}),
        "rate_limiter": (lambda: registry.rate_limiter("p", rate=5), {"rate": 6}),
        "retry_budget": (lambda: registry.retry_budget("p"), {"ratio": 0.5}),
        "fallback": (lambda: registry.fallback("p", value=1), {"value": 2}),
        "hedge": (lambda: registry.hedge("p", delay=1), {"delay": 2}),
        "chaos": (lambda: registry.chaos("p"), {"latency": 1}),
        "timeout": (lambda: registry.timeout("p", seconds=1), {"seconds": 2}),
        "bulkhead": (lambda: registry.bulkhead("p", max_concurrent=1), {"max_concurrent": 2}),
    }
    for kind, (make, change) in changes.items():
        make()
        registry.reconfigure(kind, "p", **change)
        (param, value), *_ = change.items()
        assert getattr(registry.get(kind, "p").config, param) == value, kind
    registry.reconfigure("health_check", "disk", timeout=2)
    assert registry.get("health_check", "disk").config.timeout == 2
    assert set(changes) | {"health_check"} == set(registry.stats())


# -- the hot path ------------------------------------------------------------------------


def test_a_slow_path_change_leaves_the_driver_as_it_was(registry: hazina.Registry) -> None:
    """A change only the policy's slow paths read does not touch the decorated function's code."""
    guarded = hazina.circuit_breaker("db", registry=registry)(echo)
    code = code_of(guarded)
    guarded.policy.reconfigure(open_for=1, failure_threshold=2)
    assert code_of(guarded) is code


def test_a_changed_driver_variant_applies_and_swapping_back_restores_it(
    registry: hazina.Registry, clock: FakeClock, flavor: Flavor
) -> None:
    """Slow calls are timed from the change on; turning that off restores the driver."""

    def slow(value: Any = None) -> Any:
        clock.advance(2)
        return value

    guarded = hazina.circuit_breaker("db", registry=registry)(flavor.define(slow))
    code = code_of(guarded)
    flavor.call(guarded, 1)
    guarded.policy.reconfigure(slow_call_duration=1.0)
    assert flavor.call(guarded, 2) == 2
    assert guarded.policy.stats().slow_calls == 1
    guarded.policy.reconfigure(slow_call_duration=None)
    assert code_of(guarded) is code
    assert flavor.call(guarded, 3) == 3
    assert guarded.policy.stats().slow_calls == 1


# -- threads -----------------------------------------------------------------------------


def test_eight_threads_never_see_half_a_configuration() -> None:
    """Under 8 threads each call runs under one whole configuration, and every call counts."""
    registry = hazina.Registry()
    first: dict[str, Any] = {"value": "first", "on": KeyError}
    second: dict[str, Any] = {"value": "second", "on": LookupError}
    third: dict[str, Any] = {"value": "third", "on": ValueError}

    def body() -> None:
        raise KeyError("x")

    guarded = hazina.fallback("mixed", registry=registry, **first)(body)
    outcomes: list[Any] = []
    stop = threading.Event()
    started = threading.Barrier(9)

    def caller() -> None:
        seen: list[Any] = []
        started.wait()
        while not stop.is_set():
            try:
                seen.append(guarded())
            except KeyError:
                seen.append("raised")
        outcomes.extend(seen)

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for thread in threads:
        thread.start()
    started.wait()
    for round_ in range(1500):
        guarded.policy.reconfigure(**(first, second, third)[round_ % 3])
    stop.set()
    for thread in threads:
        thread.join(10)
    # "third" would mean the value of the third config with the `on` of another; a
    # KeyError passed under `third` is "raised"; first and second both answer KeyError.
    assert set(outcomes) <= {"first", "second", "raised"}
    assert guarded.policy.stats().calls == len(outcomes)
    assert guarded.policy.stats().fallbacks == sum(o != "raised" for o in outcomes)


def test_eight_threads_lose_no_breaker_count_across_variant_swaps() -> None:
    """Calls through a breaker whose driver is swapped to and fro under 8 threads all count."""
    registry = hazina.Registry()
    guarded = hazina.circuit_breaker("busy", registry=registry, failure_threshold=None)(echo)
    stop = threading.Event()
    counts: list[int] = []

    def caller() -> None:
        made = 0
        while not stop.is_set():
            assert guarded(made) == made
            made += 1
        counts.append(made)

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for thread in threads:
        thread.start()
    for round_ in range(200):
        guarded.policy.reconfigure(slow_call_duration=60.0 if round_ % 2 == 0 else None)
    stop.set()
    for thread in threads:
        thread.join(10)
    stats = guarded.policy.stats()
    assert stats.calls == stats.successes == sum(counts)
    assert stats.state == "closed"


# -- keep-state rules, per kind ----------------------------------------------------------


def test_breaker_keeps_its_state_and_window_of_the_same_shape(
    registry: hazina.Registry, flavor: Flavor
) -> None:
    """An open breaker stays open; the window's calls stay while its shape does."""
    breaker = registry.circuit_breaker("db", failure_threshold=None, minimum_calls=4)
    guarded = hazina.circuit_breaker("db", registry=registry)(flavor.define(failing))
    for _ in range(3):
        with pytest.raises(Down):
            flavor.call(guarded)
    breaker.reconfigure(failure_rate=0.9, open_for=60)
    with pytest.raises(Down):
        flavor.call(guarded)
    assert breaker.state == "open"  # four failures of four, kept across the change
    breaker.reconfigure(open_for=5)
    assert breaker.state == "open"
    assert breaker.stats().retry_after == pytest.approx(5)


def test_breaker_starts_a_fresh_window_of_a_new_shape(
    registry: hazina.Registry, flavor: Flavor
) -> None:
    """A new window size empties the window but keeps the counters and the state."""
    breaker = registry.circuit_breaker("db", failure_threshold=None, minimum_calls=4)
    guarded = hazina.circuit_breaker("db", registry=registry)(flavor.define(failing))
    for _ in range(3):
        with pytest.raises(Down):
            flavor.call(guarded)
    breaker.reconfigure(window_size=50)
    with pytest.raises(Down):
        flavor.call(guarded)
    assert breaker.state == "closed"  # one failure in the new window
    assert breaker.stats().failures == 4


def test_limiter_keeps_its_tokens_capped_at_the_new_burst(
    registry: hazina.Registry, clock: FakeClock
) -> None:
    """Tokens left stay after a change of rate; a smaller burst caps them."""
    limiter = registry.rate_limiter("api", rate=10, per=1)
    for _ in range(6):
        limiter.acquire()
    limiter.reconfigure(rate=20)
    assert limiter.status().remaining == pytest.approx(4)
    limiter.reconfigure(burst=2)
    assert limiter.status().remaining == pytest.approx(2)
    clock.advance(0.05)
    assert limiter.status().remaining == pytest.approx(2)  # full at the new burst
    limiter.acquire()
    limiter.acquire()
    with pytest.raises(hazina.RateLimitExceeded):
        limiter.acquire()


@pytest.mark.parametrize("algorithm", ["token_bucket", "gcra"])
def test_limiter_decorated_function_refills_at_the_new_rate(
    registry: hazina.Registry, clock: FakeClock, flavor: Flavor, algorithm: Any
) -> None:
    """A decorated function is admitted at the new rate from its next call."""
    guarded = hazina.rate_limited("api", rate=2, per=60, algorithm=algorithm, registry=registry)(
        flavor.define(echo)
    )
    flavor.call(guarded)
    flavor.call(guarded)
    with pytest.raises(hazina.RateLimitExceeded):
        flavor.call(guarded)
    guarded.policy.reconfigure(rate=2, per=1)
    clock.advance(1)
    flavor.call(guarded)
    flavor.call(guarded)
    with pytest.raises(hazina.RateLimitExceeded):
        flavor.call(guarded)


def test_sliding_window_keeps_its_log_under_a_new_rate(
    registry: hazina.Registry, flavor: Flavor
) -> None:
    """The calls logged in the window still count against a higher rate."""
    guarded = hazina.rate_limited(
        "api", rate=2, per=60, algorithm="sliding_window", registry=registry
    )(flavor.define(echo))
    flavor.call(guarded)
    flavor.call(guarded)
    guarded.policy.reconfigure(rate=3)
    flavor.call(guarded)
    with pytest.raises(hazina.RateLimitExceeded):
        flavor.call(guarded)


def test_limiter_of_another_algorithm_starts_full(registry: hazina.Registry) -> None:
    """A new algorithm cannot read the old state: every key starts full."""
    limiter = registry.rate_limiter("api", rate=3, per=60)
    limiter.acquire("k")
    limiter.reconfigure(algorithm="gcra")
    assert limiter.status("k").remaining == pytest.approx(3)


def test_cache_keeps_entries_and_their_expiry(
    registry: hazina.Registry, clock: FakeClock, flavor: Flavor
) -> None:
    """Entries keep the expiry they were stored with; new entries get the new ttl."""
    loads: list[Any] = []

    def load(key: Any) -> Any:
        loads.append(key)
        return key

    guarded = hazina.cached("c", ttl=10, registry=registry)(flavor.define(load))
    flavor.call(guarded, "old")
    guarded.policy.reconfigure(ttl=100)
    flavor.call(guarded, "old")
    flavor.call(guarded, "new")
    clock.advance(50)
    flavor.call(guarded, "old")
    flavor.call(guarded, "new")
    assert loads == ["old", "new", "old"]


def test_cache_smaller_max_size_evicts_at_once(
    registry: hazina.Registry, events: list[object]
) -> None:
    """Shrinking max_size evicts the least recently used entries right away, counted and emitted."""
    cache = registry.cache("c", max_size=5)
    for key in range(5):
        cache.set(key, key)
    cache.get(0)
    cache.reconfigure(max_size=2)
    assert cache.stats().size == 2
    assert cache.stats().evictions == 3
    assert sorted(k for k in range(5) if k in cache) == [0, 4]
    evicted = [event.key for event in events if isinstance(event, hazina.CacheEvicted)]
    assert evicted == [1, 2, 3]


def test_retry_keeps_its_counters(registry: hazina.Registry, flavor: Flavor) -> None:
    """Counters run on across a reconfigure."""
    guarded = hazina.retry("api", attempts=2, registry=registry)(flavor.define(failing))
    with pytest.raises(Down):
        flavor.call(guarded)
    guarded.policy.reconfigure(attempts=3)
    with pytest.raises(Down):
        flavor.call(guarded)
    assert guarded.policy.stats().attempts == 5


def test_retry_joins_a_new_budget(registry: hazina.Registry) -> None:
    """A new budget name makes the retry draw from that budget."""
    guarded = hazina.retry("api", attempts=3, registry=registry)(failing)
    guarded.policy.reconfigure(budget="shared")
    with pytest.raises(Down):
        guarded()
    assert registry.get("retry_budget", "shared").stats().retries == 2


def test_fallback_answers_with_the_new_value(registry: hazina.Registry, flavor: Flavor) -> None:
    """A fallback reconfigured from a value to a handler answers with the handler."""
    guarded = hazina.fallback("f", value=1, registry=registry)(flavor.define(failing))
    assert flavor.call(guarded) == 1
    guarded.policy.reconfigure(handler=lambda error: 2)
    assert flavor.call(guarded) == 2
    assert guarded.policy.stats().fallbacks == 2


def test_chaos_keeps_its_switch_unless_enabled_is_changed(registry: hazina.Registry) -> None:
    """A chaos policy disabled at run time stays disabled through other changes."""
    chaos = registry.chaos("c", error=Down, error_rate=1.0)
    chaos.disable()
    chaos.reconfigure(error_rate=0.5)
    assert chaos.enabled is False
    chaos.reconfigure(enabled=True)
    assert chaos.enabled is True


def wait_until(condition: Callable[[], bool], seconds: float = 2.0) -> None:
    """Poll ``condition`` (a millisecond at a time) until it holds, or fail."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.001)


def test_bulkhead_admits_waiters_within_a_larger_limit_and_interrupts_nobody() -> None:
    """A grown limit lets queued calls in at once; a shrunk one admits waiters only below it."""
    registry = hazina.Registry()
    release = threading.Event()
    running: list[int] = []

    @hazina.bulkhead("b", registry=registry, max_concurrent=1, max_queue=5)
    def hold(number: int) -> None:
        running.append(number)
        release.wait(10)

    threads = [threading.Thread(target=hold, args=(n,)) for n in range(4)]
    try:
        for queued, thread in enumerate(threads):
            thread.start()
            wait_until(lambda: registry.bulkhead("b").stats().queued == queued)  # noqa: B023
        hold.policy.reconfigure(max_concurrent=3)
        wait_until(lambda: len(running) == 3)
        stats = hold.policy.stats()
        assert (stats.active, stats.queued, stats.peak_active) == (3, 1, 3)
        hold.policy.reconfigure(max_concurrent=1)
        assert hold.policy.stats().active == 3  # nobody interrupted
    finally:
        release.set()
        for thread in threads:
            thread.join(10)
    stats = hold.policy.stats()
    assert (stats.admitted, stats.active, stats.queued) == (4, 0, 0)


def test_bulkhead_shrunk_hands_no_slot_on_above_the_new_limit() -> None:
    """After a shrink, a call finishing while others still exceed the limit admits no waiter."""
    registry = hazina.Registry()
    gates = [threading.Event() for _ in range(3)]
    running: list[int] = []

    @hazina.bulkhead("b", registry=registry, max_concurrent=2, max_queue=5)
    def hold(number: int) -> None:
        running.append(number)
        gates[number].wait(10)

    threads = [threading.Thread(target=hold, args=(n,)) for n in range(3)]
    try:
        for thread in threads:
            thread.start()
        wait_until(lambda: hold.policy.stats().queued == 1)
        hold.policy.reconfigure(max_concurrent=1)
        gates[running[0]].set()
        wait_until(lambda: hold.policy.stats().active == 1)
        time.sleep(0.02)
        assert len(running) == 2  # the waiter still waits: one call runs, the new limit
        gates[running[1]].set()
        wait_until(lambda: len(running) == 3)
    finally:
        for gate in gates:
            gate.set()
        for thread in threads:
            thread.join(10)


def test_timeout_applies_new_seconds_to_the_next_call(registry: hazina.Registry) -> None:
    """A longer timeout lets through the next call that the old one cut short."""
    import asyncio

    @hazina.timeout("t", seconds=0.01, registry=registry)
    async def slow() -> str:
        await asyncio.sleep(0.05)
        return "done"

    with pytest.raises(hazina.TimeoutExceeded):
        asyncio.run(slow())
    slow.policy.reconfigure(seconds=1.0)
    assert asyncio.run(slow()) == "done"
    assert slow.policy.stats().calls == 2


def test_keyed_breaker_applies_changes_to_every_key(
    registry: hazina.Registry, clock: FakeClock
) -> None:
    """Each key's breaker takes the new values; key= itself cannot be turned off."""
    breaker = registry.circuit_breaker("hosts", key=lambda host: host, failure_threshold=1)
    guarded = hazina.circuit_breaker("hosts", registry=registry)(failing)
    with pytest.raises(Down):
        guarded("a")
    assert breaker.state_of("a") == "open"
    breaker.reconfigure(open_for=5, failure_threshold=2)
    clock.advance(5)
    assert breaker.state_of("a") == "half_open"
    with pytest.raises(Down):
        guarded("b")
    assert breaker.state_of("b") == "closed"  # a new key: two failures needed now
    with pytest.raises(hazina.ConfigurationError, match="key= cannot be turned"):
        breaker.reconfigure(key=None)
    assert breaker.config.failure_threshold == 2


def test_retry_budget_keeps_its_window_of_the_same_length(registry: hazina.Registry) -> None:
    """Retries spent stay spent under a new ratio; a new window length starts it empty."""
    budget = registry.retry_budget("b", ratio=0.0, min_per_second=0.1, window=10)
    guarded = hazina.retry("api", attempts=3, budget="b", registry=registry)(failing)
    with pytest.raises(Down):
        guarded()  # the reserve is one retry: one allowed, one refused
    assert (budget.stats().retries, budget.stats().refused) == (1, 1)
    budget.reconfigure(min_per_second=0.2)  # a reserve of two, one already spent
    with pytest.raises(Down):
        guarded()
    assert budget.stats().retries == 2
    budget.reconfigure(window=5, min_per_second=0.4)  # a fresh window of two
    with pytest.raises(Down):
        guarded()
    assert budget.stats().retries == 4


def test_hedge_uses_a_new_delay_from_the_next_call(registry: hazina.Registry) -> None:
    """A hedge reconfigured to a zero delay hedges a slow first attempt at once."""
    import asyncio

    calls: list[int] = []

    @hazina.hedge("h", delay=60, registry=registry)
    async def slow() -> str:
        calls.append(1)
        if len(calls) == 1:
            await asyncio.sleep(1)
        return "ok"

    slow.policy.reconfigure(delay=0.0)
    assert asyncio.run(slow()) == "ok"
    assert slow.policy.stats().hedges == 1


def test_methods_keep_binding_across_a_driver_change(registry: hazina.Registry) -> None:
    """Instance methods and classmethods still get their self or class after a new driver."""

    class Service:
        factor = 3

        @hazina.circuit_breaker("svc", registry=registry)
        def times(self, value: int) -> int:
            return value * self.factor

        @classmethod
        @hazina.circuit_breaker("svc", registry=registry)
        def class_times(cls, value: int) -> int:
            return value * cls.factor

    service = Service()
    registry.reconfigure("circuit_breaker", "svc", slow_call_duration=10.0)
    assert service.times(2) == 6
    untyped: Any = Service  # mypy does not bind a classmethod over a decorated function
    assert untyped.class_times(2) == 6
    registry.reconfigure("circuit_breaker", "svc", slow_call_duration=None)
    assert service.times(3) == 9
    assert registry.get("circuit_breaker", "svc").stats().calls == 3


def test_tasks_awaiting_across_a_reconfigure_finish_under_one_configuration() -> None:
    """Tasks suspended mid-call across reconfigures each answer from one whole configuration."""
    import asyncio

    registry = hazina.Registry()
    configs: list[dict[str, Any]] = [
        {"value": "first", "on": KeyError},
        {"value": "second", "on": LookupError},
        {"value": "third", "on": ValueError},
    ]

    async def body() -> None:
        await asyncio.sleep(0)
        raise KeyError("x")

    guarded = hazina.fallback("tasks", registry=registry, **configs[0])(body)

    async def call() -> Any:
        try:
            return await guarded()
        except KeyError:
            return "raised"

    async def main() -> list[Any]:
        calls = [asyncio.ensure_future(call()) for _ in range(600)]
        for round_ in range(300):
            guarded.policy.reconfigure(**configs[round_ % 3])
            await asyncio.sleep(0)
        return list(await asyncio.gather(*calls))

    outcomes = asyncio.run(main())
    assert set(outcomes) <= {"first", "second", "raised"}
    assert "first" in outcomes or "second" in outcomes
    assert guarded.policy.stats().calls == 600
