"""Chaos: errors, delays and results injected at their rates, reproducibly, switchable.

Every behavioural scenario runs sync and async through the ``flavor`` fixture.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

import pytest
from interrupts import output_of_forked_child

import hazina
from hazina.testing import FakeClock, instant_waits

if TYPE_CHECKING:
    from conftest import Flavor


class Injected(Exception):
    """The fault chaos raises."""


def outcomes(flavor: Flavor, fn: Any, calls: int) -> list[str]:
    """What each of ``calls`` calls did: "ok", "error" or the injected result."""
    seen = []
    for _ in range(calls):
        try:
            seen.append(str(flavor.call(fn)))
        except Injected:
            seen.append("error")
    return seen


def ran() -> str:
    return "ok"


@pytest.mark.parametrize(("param", "rate"), [("error_rate", 0.3), ("result_rate", 0.05)])
def test_rates_hold_statistically_with_a_fixed_seed(
    registry: hazina.Registry, flavor: Flavor, param: str, rate: float
) -> None:
    """Over 4000 calls the share of injections is within 4 standard deviations of the rate."""
    config: dict[str, Any] = {param: rate, "seed": 1234, "error": Injected, "result": "faked"}
    guarded = hazina.chaos("c", registry=registry, **config)(flavor.define(ran))
    calls = 4000
    seen = outcomes(flavor, guarded, calls)
    injected = calls - seen.count("ok")
    spread = 4 * math.sqrt(calls * rate * (1 - rate))
    assert abs(injected - calls * rate) <= spread
    stats = guarded.policy.stats()
    assert stats.calls == calls
    assert stats.errors_injected + stats.results_injected == injected


def test_latency_rate_holds_and_each_delay_comes_before_the_call(
    registry: hazina.Registry, clock: FakeClock, flavor: Flavor
) -> None:
    """Delayed calls run after the delay; their share is near latency_rate."""
    started: list[float] = []

    def timed() -> str:
        started.append(clock.now())
        return "ok"

    guarded = hazina.chaos("c", latency=2.0, latency_rate=0.2, seed=5, registry=registry)(
        flavor.define(timed)
    )
    calls = 2000
    outcomes(flavor, guarded, calls)
    delayed = guarded.policy.stats().latency_injected
    assert abs(delayed - calls * 0.2) <= 4 * math.sqrt(calls * 0.2 * 0.8)
    assert started[-1] == pytest.approx(1000.0 + 2.0 * delayed)


def test_a_seed_replays_the_same_faults(flavor: Flavor) -> None:
    """Two policies with one seed inject the same faults into the same sequence of calls."""
    runs = []
    for _ in range(2):
        registry = hazina.Registry(clock=FakeClock())
        guarded = hazina.chaos(
            "c",
            error=Injected,
            error_rate=0.3,
            result=7,
            result_rate=0.3,
            seed=99,
            registry=registry,
        )(flavor.define(ran))
        runs.append(outcomes(flavor, guarded, 200))
    assert runs[0] == runs[1]
    assert {"ok", "error", "7"} == set(runs[0])


def test_an_injected_error_or_result_replaces_the_call(
    registry: hazina.Registry, flavor: Flavor
) -> None:
    """The function does not run when an error or a result is injected; None is a result."""
    runs: list[int] = []

    def body() -> str:
        runs.append(1)
        return "ok"

    failing = hazina.chaos("e", error=Injected, error_rate=1.0, registry=registry)(
        flavor.define(body)
    )
    answering = hazina.chaos("r", result=None, result_rate=1.0, registry=registry)(
        flavor.define(body)
    )
    with pytest.raises(Injected):
        flavor.call(failing)
    assert flavor.call(answering) is None
    assert runs == []


def test_an_error_class_is_instantiated_per_injection_and_an_instance_raised_as_is(
    registry: hazina.Registry,
) -> None:
    """Each injection of a class raises a new instance; an instance is raised itself."""
    by_class = hazina.chaos("c", error=Injected, error_rate=1.0, registry=registry)(ran)
    instance = Injected("the one")
    by_instance = hazina.chaos("i", error=instance, error_rate=1.0, registry=registry)(ran)
    raised = []
    for fn in (by_class, by_class, by_instance):
        with pytest.raises(Injected) as caught:
            fn()
        raised.append(caught.value)
    assert raised[0] is not raised[1]
    assert raised[2] is instance


def traceback_length(error: BaseException) -> int:
    length, entry = 0, error.__traceback__
    while entry is not None:
        length, entry = length + 1, entry.tb_next
    return length


def test_an_injected_instance_keeps_no_traceback_or_notes_of_earlier_injections(
    registry: hazina.Registry,
) -> None:
    """Regression: an instance raised again kept the traceback of every earlier raise
    (and every frame in it alive) and every note a retry added on giving up, so a
    long-running chaos experiment grew without bound; each injection now starts from the
    instance as it was given."""
    instance = Injected("the one")
    instance.add_note("given with this note")

    @hazina.retry("r", attempts=2, initial=0, jitter=None, registry=registry)
    @hazina.chaos("c", error=instance, error_rate=1.0, registry=registry)
    def call() -> str:
        return "ok"

    seen = []
    for _ in range(20):
        with pytest.raises(Injected) as caught:
            call()
        assert caught.value is instance
        seen.append((traceback_length(instance), list(instance.__notes__)))
    assert seen[-1] == seen[0]
    assert seen[0][1][0] == "given with this note"
    assert len(seen[0][1]) == 2  # and the retry's note on giving up


def test_disabled_passes_through_uncounted_and_switches_at_run_time(
    registry: hazina.Registry, flavor: Flavor
) -> None:
    """disable() stops injection from the next call; enable() starts it again."""
    guarded = hazina.chaos("c", error=Injected, error_rate=1.0, enabled=False, registry=registry)(
        flavor.define(ran)
    )
    assert flavor.call(guarded) == "ok"
    guarded.policy.enable()
    with pytest.raises(Injected):
        flavor.call(guarded)
    guarded.policy.disable()
    assert flavor.call(guarded) == "ok"
    assert guarded.policy.stats() == hazina.ChaosStats(
        calls=1, errors_injected=1, latency_injected=0, results_injected=0
    )


def test_instant_waits_skip_the_delay(
    registry: hazina.Registry, clock: FakeClock, flavor: Flavor
) -> None:
    """Under instant_waits() an injected delay takes no time, and is still counted."""
    guarded = hazina.chaos("c", latency=5.0, latency_rate=1.0, registry=registry)(
        flavor.define(ran)
    )
    with instant_waits():
        assert flavor.call(guarded) == "ok"
    assert clock.now() == 1000.0
    assert guarded.policy.stats().latency_injected == 1


def test_injections_are_events(registry: hazina.Registry, events: list[object]) -> None:
    """Each injected fault is emitted as ChaosInjected."""
    guarded = hazina.chaos(
        "c", latency=1.0, latency_rate=1.0, error=Injected, error_rate=1.0, registry=registry
    )(ran)
    with pytest.raises(Injected):
        guarded()
    assert events == [
        hazina.ChaosInjected("c", "latency", 1.0),
        hazina.ChaosInjected("c", "error"),
    ]


def test_reset_replays_from_the_seed(registry: hazina.Registry) -> None:
    """reset() zeroes the counters and restarts the seeded sequence."""
    guarded = hazina.chaos("c", error=Injected, error_rate=0.5, seed=3, registry=registry)(ran)
    flavor_free = [_outcome(guarded) for _ in range(50)]
    guarded.policy.reset()
    assert [_outcome(guarded) for _ in range(50)] == flavor_free
    assert guarded.policy.stats().calls == 50


def _outcome(fn: Any) -> str:
    try:
        return str(fn())
    except Injected:
        return "error"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"error_rate": 0.5}, "error must be an exception class or instance when error_rate"),
        ({"result_rate": 0.5}, "result must be given when result_rate"),
        ({"error_rate": 1.5, "error": Injected}, "error_rate must be a number from 0 to 1"),
        ({"latency": -1}, "latency must be a number of seconds from 0 to"),
        # Regression: passed, then every delayed call raised OverflowError from the sleep.
        ({"latency": 1e300}, "latency must be a number of seconds from 0 to 9.2"),
        ({"error": 3}, "error must be None, an exception class or an exception"),
        # Regression: passed, then every injection raised TypeError from the constructor.
        (
            {"error": UnicodeDecodeError, "error_rate": 0.5},
            "error must be an exception class that takes no arguments",
        ),
        ({"error": "NoSuchError"}, "error must be the name of an exception class"),
        ({"enabled": "yes"}, "enabled must be True or False"),
        ({"seed": 1.5}, "seed must be None or a whole number"),
    ],
)
def test_bad_configuration_is_refused_at_decoration(
    registry: hazina.Registry, config: dict[str, Any], message: str
) -> None:
    """A bad value names the policy and the parameter."""
    with pytest.raises(hazina.ConfigurationError, match=f"chaos 'c': {message}"):
        hazina.chaos("c", registry=registry, **config)(ran)


def test_an_error_named_in_a_file_is_the_class(registry: hazina.Registry) -> None:
    """error="TimeoutError" or a dotted path names an exception class."""
    assert registry.chaos("a", error="TimeoutError").config.error is TimeoutError
    named = registry.chaos("b", error="hazina.CircuitOpenError").config.error
    assert named is hazina.CircuitOpenError


def test_a_delay_ends_at_an_enclosing_timeout_deadline(flavor: Flavor) -> None:
    """An injected delay longer than the time left sleeps only until the deadline."""
    registry = hazina.Registry()
    slept: list[float] = []

    class Watching(hazina.SystemClock):
        def sleep(self, seconds: float) -> None:
            slept.append(seconds)

        async def asleep(self, seconds: float) -> None:
            slept.append(seconds)

    registry = hazina.Registry(clock=Watching())
    inner = hazina.chaos("c", latency=30.0, latency_rate=1.0, registry=registry)(flavor.define(ran))
    outer = hazina.timeout("t", seconds=0.5, registry=registry)(inner)
    assert flavor.call(outer) == "ok"
    assert len(slept) == 1
    assert 0 < slept[0] <= 0.5


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_children_of_an_unseeded_chaos_draw_faults_of_their_own(
    registry: hazina.Registry,
) -> None:
    """Regression: every process forked from one parent (a pre-fork server's workers)
    drew the very same faults on the same calls, the unseeded generator copied with its
    state into each; like the standard library's ``random``, a child now draws its own.
    A seeded chaos still replays its seed's sequence in every process."""
    unseeded = hazina.chaos("u", error=Injected, error_rate=0.5, registry=registry)(ran)
    seeded = hazina.chaos("s", error=Injected, error_rate=0.5, seed=7, registry=registry)(ran)

    def draws() -> str:
        return "".join(
            "x" if _outcome(fn) == "error" else "." for fn in (unseeded, seeded) for _ in range(64)
        )

    seen = [output_of_forked_child(draws) for _ in range(2)]
    assert len(seen[0]) == len(seen[1]) == 128
    assert seen[0][:64] != seen[1][:64]
    assert seen[0][64:] == seen[1][64:]
