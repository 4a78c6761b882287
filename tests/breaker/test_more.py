"""Breaker, more: a growing open time, failure_rate=None, dry run, and their bad values."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from conftest import Flavor

import hazina
from hazina import CallRejected, CircuitOpenError, CircuitState, ConfigurationError
from hazina import CircuitStateChanged as Changed
from hazina.testing import FakeClock

CLOSED, OPEN = CircuitState.CLOSED, CircuitState.OPEN
HALF_OPEN = CircuitState.HALF_OPEN
OK = "ok"


class Boom(Exception):
    """The dependency failed."""


class Service:
    """A dependency behind a breaker: ``ok()`` succeeds, ``fail()`` raises Boom."""

    def __init__(self, flavor: Flavor, registry: hazina.Registry, **config: Any) -> None:
        self.flavor = flavor
        self.runs = 0

        def dependency(fail: bool = False) -> str:
            self.runs += 1
            if fail:
                raise Boom("down")
            return OK

        self.fn = hazina.circuit_breaker("svc", registry=registry, **config)(
            flavor.define(dependency)
        )
        self.breaker: hazina.CircuitBreaker = self.fn.policy

    def ok(self, times: int = 1) -> None:
        for _ in range(times):
            assert self.flavor.call(self.fn) == OK

    def fail(self, times: int = 1) -> None:
        for _ in range(times):
            with pytest.raises(Boom):
                self.flavor.call(self.fn, True)

    def rejected(self) -> CircuitOpenError:
        with pytest.raises(CircuitOpenError) as info:
            self.flavor.call(self.fn)
        return info.value


# -- open time that grows ---------------------------------------------------------------------


def test_each_failed_probe_multiplies_the_open_time_up_to_max_open_for(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """10 s, then 20, 40, 80, and never more than max_open_for (100)."""
    service = Service(
        flavor,
        registry,
        failure_threshold=1,
        open_for=10,
        open_for_multiplier=2,
        max_open_for=100,
    )
    service.fail()
    for expected in (10, 20, 40, 80, 100, 100):
        assert service.rejected().retry_after == expected
        clock.advance(expected)
        assert service.breaker.state is HALF_OPEN
        service.fail()  # the probe fails: reopen for longer


def test_closing_resets_the_open_time(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """After the breaker closes, the next trip opens for open_for again."""
    service = Service(
        flavor,
        registry,
        failure_threshold=1,
        success_threshold=1,
        open_for=10,
        open_for_multiplier=3,
    )
    service.fail()
    clock.advance(10)
    service.fail()
    assert service.rejected().retry_after == 30
    clock.advance(30)
    service.ok()  # the probe closes it
    assert service.breaker.state is CLOSED
    service.fail()
    assert service.rejected().retry_after == 10


def test_a_half_open_timeout_counts_as_failed_probing(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """Probes that never close the breaker in time reopen it for the grown open time."""
    service = Service(
        flavor,
        registry,
        failure_threshold=1,
        open_for=10,
        half_open_timeout=5,
        success_threshold=3,
        open_for_multiplier=2,
    )
    service.fail()
    clock.advance(10)
    service.ok()  # one probe of three
    clock.advance(5)
    assert service.breaker.state is OPEN
    assert service.breaker.stats().retry_after == 20


def test_the_default_multiplier_keeps_open_for(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """Without open_for_multiplier every open period lasts open_for, as before."""
    service = Service(flavor, registry, failure_threshold=1, open_for=10)
    service.fail()
    clock.advance(10)
    service.fail()
    assert service.rejected().retry_after == 10
    assert service.breaker.config.max_open_for == 100


def test_reset_restores_open_for(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """reset() forgets a grown open time."""
    service = Service(flavor, registry, failure_threshold=1, open_for=10, open_for_multiplier=2)
    service.fail()
    clock.advance(10)
    service.fail()
    service.breaker.reset()
    service.fail()
    assert service.rejected().retry_after == 10


# -- failure_rate=None --------------------------------------------------------------------------


def test_failure_rate_none_turns_the_rate_rule_off(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """With failure_rate=None only the consecutive-failure rule opens the breaker."""
    service = Service(flavor, registry, failure_rate=None, failure_threshold=3, minimum_calls=2)
    for _ in range(10):
        service.fail(2)
        service.ok()
    assert service.breaker.state is CLOSED
    stats = service.breaker.stats()
    assert stats.failure_rate == pytest.approx(20 / 30)  # still reported
    service.fail(3)
    assert service.breaker.state is OPEN


def test_failure_rate_none_keeps_the_slow_call_rule(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """The slow-call rate rule still applies when the failure rate rule is off."""
    service = Service(
        flavor,
        registry,
        failure_rate=None,
        failure_threshold=None,
        minimum_calls=2,
        slow_call_duration=1.0,
        slow_call_rate=0.5,
    )
    service.fail(4)
    assert service.breaker.state is CLOSED

    def slow() -> str:
        clock.advance(2)
        return OK

    @hazina.circuit_breaker("svc", registry=registry)
    def call_slow() -> str:
        return slow()

    for _ in range(4):
        call_slow()
    assert service.breaker.state is OPEN


# -- dry run ----------------------------------------------------------------------------------


def test_dry_run_counts_and_reports_but_refuses_nothing(
    flavor: Flavor, registry: hazina.Registry, events: list[object]
) -> None:
    """A dry-run breaker opens, counts rejections and emits events; every call runs."""
    service = Service(flavor, registry, failure_threshold=2, dry_run=True)
    service.fail(2)
    service.ok(3)  # would have been rejected
    assert service.runs == 5
    stats = service.breaker.stats()
    assert (stats.state, stats.rejections, stats.calls, stats.successes) == (OPEN, 3, 5, 3)
    assert events[0] == Changed("svc", CLOSED, OPEN, dry_run=True)
    assert events[1:] == [CallRejected("svc", OPEN, 30.0, dry_run=True)] * 3


def test_dry_run_goes_through_half_open_like_a_real_breaker(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """Calls let through while open do not move the state; probes do, as for real."""
    service = Service(flavor, registry, failure_threshold=1, open_for=10, dry_run=True)
    service.fail()
    service.fail(3)  # would have been rejected: these do not count against anything
    clock.advance(10)
    service.ok(2)  # two probes: closed
    assert service.breaker.state is CLOSED
    assert service.breaker.stats().rejections == 3


def test_dry_run_forced_open_lets_calls_through(flavor: Flavor, registry: hazina.Registry) -> None:
    """Even forced open, a dry-run breaker only reports the refusal."""
    service = Service(flavor, registry, dry_run=True)
    service.breaker.force_open()
    service.ok()
    assert service.breaker.stats().rejections == 1


def test_dry_run_keyed_breaker_reports_the_key(
    flavor: Flavor, registry: hazina.Registry, events: list[object]
) -> None:
    """A keyed dry-run breaker reports each key's decisions and runs every call."""

    def dependency(host: str) -> str:
        raise Boom(host)

    fn = hazina.circuit_breaker(
        "svc", registry=registry, key=lambda host: host, failure_threshold=1, dry_run=True
    )(flavor.define(dependency))
    for _ in range(2):
        with pytest.raises(Boom):
            flavor.call(fn, "a")
    assert events == [
        Changed("svc", CLOSED, OPEN, key="a", dry_run=True),
        CallRejected("svc", OPEN, 30.0, key="a", dry_run=True),
    ]
    stats = fn.policy.stats()
    assert (stats.calls, stats.failures, stats.rejections, stats.open_keys) == (2, 2, 1, 1)


def test_a_real_breakers_events_say_dry_run_false(
    flavor: Flavor, registry: hazina.Registry, events: list[object]
) -> None:
    """Without dry_run every event carries dry_run=False."""
    service = Service(flavor, registry, failure_threshold=1)
    service.fail()
    service.rejected()
    assert [getattr(event, "dry_run", None) for event in events] == [False, False]


def test_every_event_record_has_a_dry_run_field() -> None:
    """Listeners can read dry_run on any event hazina emits; it defaults to False."""
    records = [
        hazina.CircuitStateChanged,
        hazina.CallRejected,
        hazina.RateLimitRejected,
        hazina.RateLimitDelayed,
        hazina.RetryScheduled,
        hazina.RetryGaveUp,
        hazina.CacheEvicted,
        hazina.HealthStatusChanged,
    ]
    for record in records:
        field = attrs.fields_dict(record)["dry_run"]
        assert field.default is False, record
        assert field.kw_only, record


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("param", "value", "expected"),
    [
        ("key", "host", "None or a function of the call's arguments"),
        ("max_keys", 0, "a whole number of 1 or more"),
        ("max_keys", 1.5, "a whole number of 1 or more"),
        ("max_keys", True, "a whole number of 1 or more"),
        ("open_for_multiplier", 0.5, "a number of 1 or more"),
        ("open_for_multiplier", float("inf"), "a number of 1 or more"),
        ("open_for_multiplier", "2", "a number of 1 or more"),
        ("max_open_for", 0, "a number of seconds above 0"),
        ("max_open_for", float("nan"), "a number of seconds above 0"),
        ("max_open_for", 1e300, "a number of seconds above 0"),
        ("max_open_for", 5, "at least open_for (30)"),
        ("dry_run", 1, "True or False"),
        ("dry_run", "yes", "True or False"),
        ("failure_rate", 0, "a number above 0 and at most 1"),
    ],
)
def test_bad_values_are_configuration_errors(
    registry: hazina.Registry, param: str, value: object, expected: str
) -> None:
    """Each new parameter refuses a bad value at creation, naming policy, parameter, value."""
    with pytest.raises(ConfigurationError) as info:
        registry.circuit_breaker("svc", **{param: value})  # type: ignore[arg-type]
    message = str(info.value)
    assert "'svc'" in message
    assert param in message
    assert expected in message


def test_max_open_for_follows_open_for(registry: hazina.Registry) -> None:
    """max_open_for defaults to 10 x open_for, and equals that value spelled out."""
    breaker = registry.circuit_breaker("svc", open_for=5)
    assert breaker.config.max_open_for == 50
    assert registry.circuit_breaker("svc", open_for=5, max_open_for=50) is breaker
    with pytest.raises(ConfigurationError):
        registry.circuit_breaker("svc", open_for=5, max_open_for=60)
