"""The registry: named policies, get-or-create, lookups, stats, snapshots and events."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest
from conftest import Flavor

import hazina
from hazina.testing import FakeClock

KINDS = {
    "circuit_breaker",
    "retry",
    "cache",
    "rate_limiter",
    "health_check",
    "retry_budget",
    "fallback",
    "hedge",
    "timeout",
    "bulkhead",
    "chaos",
}
BREAKER_STATS_FIELDS = {
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
RETRY_STATS_FIELDS = {
    "calls",
    "attempts",
    "retries",
    "successes",
    "successes_after_retry",
    "give_ups",
}


def fail(*_: object) -> None:
    """Raise the error every failing operation in this module raises."""
    raise ConnectionError("down")


def succeed(value: object = "ok") -> object:
    """Return ``value``."""
    return value


@pytest.fixture
def default_registry() -> Iterator[hazina.Registry]:
    """The process-wide default registry, with every policy a test adds removed afterwards."""
    before = {(policy.kind, policy.name) for policy in hazina.registry}
    yield hazina.registry
    for policy in list(hazina.registry):
        if (policy.kind, policy.name) not in before:
            hazina.registry.remove(policy.kind, policy.name)


# -- get-or-create ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["circuit_breaker", "retry"])
def test_factory_returns_the_same_instance_for_the_same_name(
    registry: hazina.Registry, kind: str
) -> None:
    """Asking a factory twice for one name gives the very same policy object."""
    factory: Callable[[str], Any] = getattr(registry, kind)
    first = factory("payments")
    assert factory("payments") is first
    assert first.name == "payments"
    assert first.kind == kind


def test_functions_decorated_with_one_name_share_one_policy(
    registry: hazina.Registry, flavor: Flavor
) -> None:
    """Two functions decorated with the same breaker name share its state."""
    breaker = hazina.circuit_breaker("shared", registry=registry, failure_threshold=1)
    first = breaker(flavor.define(fail))
    second = breaker(flavor.define(succeed))

    assert first.policy is second.policy
    with pytest.raises(ConnectionError):
        flavor.call(first)
    # The failure through `first` opened the breaker that `second` also runs under.
    with pytest.raises(hazina.CircuitOpenError):
        flavor.call(second)


def test_functions_decorated_separately_with_one_name_share_one_policy(
    registry: hazina.Registry,
) -> None:
    """Two separate decorator expressions naming one retry policy share one instance."""

    @hazina.retry("shared", registry=registry, attempts=4)
    def first() -> None:
        """First user of the policy."""

    @hazina.retry("shared", registry=registry, attempts=4)
    def second() -> None:
        """Second user of the policy."""

    assert first.policy is second.policy
    assert registry.get("retry", "shared") is first.policy


@pytest.mark.parametrize(
    ("kind", "first", "second", "parameter"),
    [
        ("circuit_breaker", {"open_for": 10}, {"open_for": 20}, "open_for"),
        ("circuit_breaker", {}, {"failure_rate": 0.9}, "failure_rate"),
        ("circuit_breaker", {"window": "time"}, {"window": "count"}, "window"),
        ("retry", {"attempts": 3}, {"attempts": 5}, "attempts"),
        ("retry", {}, {"backoff": "fixed"}, "backoff"),
        ("retry", {"on": ConnectionError}, {"on": TimeoutError}, "on"),
    ],
)
def test_same_name_with_a_different_configuration_is_refused(
    registry: hazina.Registry,
    kind: str,
    first: dict[str, Any],
    second: dict[str, Any],
    parameter: str,
) -> None:
    """A second configuration for an existing name raises, naming policy and parameter."""
    factory: Callable[..., Any] = getattr(registry, kind)
    existing = factory("payments", **first)

    with pytest.raises(hazina.ConfigurationError) as raised:
        factory("payments", **second)

    message = str(raised.value)
    assert "payments" in message
    assert parameter in message
    assert isinstance(raised.value, ValueError)
    # The refused request changed nothing.
    assert factory("payments") is existing
    assert existing.config == factory("payments", **first).config


def test_decorating_with_an_existing_name_and_another_configuration_is_refused(
    registry: hazina.Registry,
) -> None:
    """The decorator refuses, at decoration time, a configuration that differs."""

    @hazina.circuit_breaker("payments", registry=registry, open_for=10)
    def first() -> None:
        """Creates the breaker."""

    def second() -> None:
        """Asks for it with another open_for."""

    with pytest.raises(hazina.ConfigurationError, match=r"payments.*open_for"):
        hazina.circuit_breaker("payments", registry=registry, open_for=20)(second)


@pytest.mark.parametrize(
    ("kind", "first", "second"),
    [
        ("circuit_breaker", {"open_for": 10}, {"open_for": 10, "half_open_timeout": 10}),
        ("circuit_breaker", {}, {"half_open_timeout": 30}),
        ("circuit_breaker", {}, {"window_size": 100}),
        ("circuit_breaker", {"window": "time"}, {"window": "time", "window_size": 60}),
        ("circuit_breaker", {}, {"failure_rate": 0.5, "minimum_calls": 10}),
        ("circuit_breaker", {"open_for": 10.0}, {"open_for": 10}),
        ("retry", {}, {"attempts": 3, "multiplier": 2, "jitter": "full"}),
        ("retry", {"on": (ConnectionError, TimeoutError)}, {"on": (ConnectionError, TimeoutError)}),
    ],
)
def test_same_name_with_an_equal_configuration_is_accepted(
    registry: hazina.Registry,
    kind: str,
    first: dict[str, Any],
    second: dict[str, Any],
) -> None:
    """An equal configuration (derived defaults spelled out too) returns the existing policy."""
    factory: Callable[..., Any] = getattr(registry, kind)
    existing = factory("payments", **first)

    assert factory("payments", **second) is existing


def test_a_derived_default_follows_what_it_derives_from(registry: hazina.Registry) -> None:
    """half_open_timeout defaults to this policy's open_for, not to the global default."""
    registry.circuit_breaker("payments", open_for=10)

    with pytest.raises(hazina.ConfigurationError, match="half_open_timeout"):
        registry.circuit_breaker("payments", open_for=10, half_open_timeout=30)


@pytest.mark.parametrize("kind", ["circuit_breaker", "retry"])
def test_factory_without_configuration_returns_the_existing_policy(
    registry: hazina.Registry, kind: str
) -> None:
    """A factory called with only a name returns the existing policy, its config untouched."""
    factory: Callable[..., Any] = getattr(registry, kind)
    options = {"open_for": 7} if kind == "circuit_breaker" else {"attempts": 7}
    existing = factory("payments", **options)

    again = factory("payments")

    assert again is existing
    assert attrs.asdict(again.config) == attrs.asdict(existing.config)
    assert next(iter(options.values())) in attrs.asdict(again.config).values()


def test_factory_without_configuration_creates_with_defaults(registry: hazina.Registry) -> None:
    """A factory called with only a new name creates the policy with default configuration."""
    policy = registry.retry("fresh")

    assert policy.config == hazina.RetryConfig()


def test_a_decorator_given_only_a_name_follows_the_factory_rule(
    registry: hazina.Registry,
) -> None:
    """A decorator with just a name reuses an existing policy whatever its configuration."""
    existing = registry.retry("payments", attempts=7)

    @hazina.retry("payments", registry=registry)
    def call() -> None:
        """Uses the existing policy."""

    assert call.policy is existing
    assert call.policy.config.attempts == 7


def test_names_are_unique_per_kind(registry: hazina.Registry) -> None:
    """A breaker and a retry policy may share a name without clashing."""
    breaker = registry.circuit_breaker("payments", open_for=5)
    retry = registry.retry("payments", attempts=5)

    assert registry.get("circuit_breaker", "payments") is breaker
    assert registry.get("retry", "payments") is retry
    assert len(registry) == 2


# -- lookups ---------------------------------------------------------------------------


def test_get_returns_the_policy_of_that_kind_and_name(registry: hazina.Registry) -> None:
    """get(kind, name) finds the policy a factory made."""
    breaker = registry.circuit_breaker("payments")

    assert registry.get("circuit_breaker", "payments") is breaker


@pytest.mark.parametrize(
    ("kind", "name"),
    [("circuit_breaker", "missing"), ("retry", "payments"), ("no_such_kind", "payments")],
)
def test_get_of_an_unknown_policy_raises_key_error(
    registry: hazina.Registry, kind: str, name: str
) -> None:
    """get() raises KeyError for a name, or a kind, it does not hold."""
    registry.circuit_breaker("payments")

    with pytest.raises(KeyError, match=name):
        registry.get(kind, name)


def test_remove_forgets_the_policy(registry: hazina.Registry) -> None:
    """After remove(), get() fails and the factory makes a new instance."""
    old = registry.retry("payments", attempts=5)

    registry.remove("retry", "payments")

    with pytest.raises(KeyError):
        registry.get("retry", "payments")
    assert len(registry) == 0
    new = registry.retry("payments", attempts=2)
    assert new is not old
    assert new.config.attempts == 2


def test_functions_decorated_before_remove_keep_their_policy(registry: hazina.Registry) -> None:
    """A decorated function keeps working under its policy after that policy is removed."""

    @hazina.retry("payments", registry=registry)
    def call() -> str:
        """Succeeds."""
        return "ok"

    policy = call.policy
    registry.remove("retry", "payments")

    assert call() == "ok"
    assert call.policy is policy
    assert policy.stats().calls == 1


def test_remove_of_an_unknown_policy_raises_key_error(registry: hazina.Registry) -> None:
    """remove() raises KeyError for a name it does not hold."""
    registry.circuit_breaker("payments")

    with pytest.raises(KeyError, match="payments"):
        registry.remove("retry", "payments")
    assert len(registry) == 1


def test_iteration_and_len_cover_every_policy(registry: hazina.Registry) -> None:
    """Iterating a registry yields each policy once and len() counts them."""
    assert len(registry) == 0
    assert list(registry) == []

    made = [
        registry.circuit_breaker("a"),
        registry.circuit_breaker("b"),
        registry.retry("a"),
    ]

    assert len(registry) == 3
    listed = list(registry)
    assert len(listed) == 3
    assert {id(policy) for policy in listed} == {id(policy) for policy in made}


def test_reset_returns_state_to_fresh_and_keeps_configuration(
    registry: hazina.Registry, clock: FakeClock
) -> None:
    """reset() zeroes counters and closes breakers, but keeps every policy and its config."""
    guarded = hazina.circuit_breaker(
        "payments", registry=registry, failure_threshold=1, open_for=7
    )(fail)
    retried = hazina.retry("payments", registry=registry, attempts=2, jitter=None)(fail)
    breaker, retry = guarded.policy, retried.policy
    with pytest.raises(ConnectionError):
        guarded()
    with pytest.raises(ConnectionError):
        retried()
    assert breaker.state == "open"
    breaker_config, retry_config = breaker.config, retry.config

    registry.reset()

    assert registry.get("circuit_breaker", "payments") is breaker
    assert registry.get("retry", "payments") is retry
    assert breaker.config == breaker_config
    assert retry.config == retry_config
    assert breaker.state == "closed"
    assert breaker.stats() == hazina.CircuitBreakerStats(
        state=hazina.CircuitState.CLOSED,
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
    assert retry.stats() == hazina.RetryStats(
        calls=0, attempts=0, retries=0, successes=0, successes_after_retry=0, give_ups=0
    )
    # The configuration still applies after the reset: one failure opens again.
    with pytest.raises(ConnectionError):
        guarded()
    assert breaker.state == "open"


# -- stats and snapshots -----------------------------------------------------------------


def test_stats_of_an_empty_registry_has_every_kind(registry: hazina.Registry) -> None:
    """stats() has a key for every kind of policy even when nothing is registered."""
    assert registry.stats() == {kind: {} for kind in KINDS}


def test_stats_is_grouped_by_kind_and_name_as_frozen_snapshots(
    registry: hazina.Registry,
) -> None:
    """stats() maps kind to name to a frozen attrs snapshot with the documented fields."""
    hazina.circuit_breaker("payments", registry=registry)(succeed)()
    registry.retry("payments")
    registry.retry("search")

    stats = registry.stats()

    assert set(stats) == KINDS
    assert set(stats["circuit_breaker"]) == {"payments"}
    assert set(stats["retry"]) == {"payments", "search"}
    for kind in ("cache", "rate_limiter", "health_check"):
        assert stats[kind] == {}
    breaker_stats = stats["circuit_breaker"]["payments"]
    assert isinstance(breaker_stats, hazina.CircuitBreakerStats)
    assert {field.name for field in attrs.fields(type(breaker_stats))} == BREAKER_STATS_FIELDS
    assert breaker_stats.calls == 1
    retry_stats = stats["retry"]["search"]
    assert isinstance(retry_stats, hazina.RetryStats)
    assert {field.name for field in attrs.fields(type(retry_stats))} == RETRY_STATS_FIELDS
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        breaker_stats.calls = 5  # type: ignore[misc]


def test_stats_is_a_snapshot_that_later_calls_do_not_change(registry: hazina.Registry) -> None:
    """A stats object taken earlier keeps its values when the policy moves on."""
    guarded = hazina.circuit_breaker("payments", registry=registry)(succeed)
    before = registry.stats()["circuit_breaker"]["payments"]

    guarded()

    assert before.calls == 0
    assert registry.stats()["circuit_breaker"]["payments"].calls == 1


def test_snapshot_is_json_ready_with_plain_state_strings(
    registry: hazina.Registry, clock: FakeClock
) -> None:
    """snapshot() survives json.dumps unchanged and shows a breaker state as a plain str."""
    guarded = hazina.circuit_breaker("payments", registry=registry, failure_threshold=1)(fail)
    registry.retry("payments")
    with pytest.raises(ConnectionError):
        guarded()

    snapshot = registry.snapshot()

    assert json.loads(json.dumps(snapshot)) == snapshot
    assert set(snapshot) == KINDS
    breaker_data = snapshot["circuit_breaker"]["payments"]
    assert breaker_data["state"] == "open"
    assert type(breaker_data["state"]) is str
    assert breaker_data["retry_after"] == pytest.approx(30.0)
    assert set(breaker_data) == BREAKER_STATS_FIELDS
    assert set(snapshot["retry"]["payments"]) == RETRY_STATS_FIELDS


def test_snapshot_has_the_same_values_as_stats(registry: hazina.Registry) -> None:
    """snapshot() holds the values of stats(), as plain data."""
    hazina.circuit_breaker("payments", registry=registry)(succeed)()

    stats = registry.stats()
    snapshot = registry.snapshot()

    assert snapshot["circuit_breaker"]["payments"] == {
        **attrs.asdict(stats["circuit_breaker"]["payments"]),
        "state": "closed",
    }


# -- events --------------------------------------------------------------------------


def test_subscribed_listener_receives_events_before_the_call_returns(
    registry: hazina.Registry, flavor: Flavor
) -> None:
    """A listener gets frozen event records synchronously, during the call that caused them."""
    received: list[object] = []
    registry.subscribe(received.append)
    guarded = hazina.circuit_breaker("payments", registry=registry, failure_threshold=1)(
        flavor.define(fail)
    )

    with pytest.raises(ConnectionError):
        flavor.call(guarded)

    assert received == [
        hazina.CircuitStateChanged("payments", hazina.CircuitState.CLOSED, hazina.CircuitState.OPEN)
    ]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        received[0].name = "other"  # type: ignore[attr-defined]


def test_unsubscribe_stops_delivery(registry: hazina.Registry) -> None:
    """The function subscribe() returns stops the listener's events; a second call is harmless."""
    received: list[object] = []
    unsubscribe = registry.subscribe(received.append)
    breaker = registry.circuit_breaker("payments")
    breaker.force_open()
    assert len(received) == 1

    unsubscribe()
    unsubscribe()
    breaker.reset()
    breaker.force_open()

    assert len(received) == 1


def test_a_raising_listener_is_logged_and_does_not_break_the_call(
    registry: hazina.Registry, flavor: Flavor, caplog: pytest.LogCaptureFixture
) -> None:
    """A raising listener is logged on the "hazina" logger; the call and other listeners go on."""
    attempts: list[int] = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("first attempt fails")
        return "ok"

    def broken_listener(event: object) -> None:
        raise RuntimeError("listener bug")

    received: list[object] = []
    registry.subscribe(broken_listener)
    registry.subscribe(received.append)
    retried = hazina.retry("payments", registry=registry, attempts=2)(flavor.define(flaky))

    with caplog.at_level(logging.ERROR, logger="hazina"):
        assert flavor.call(retried) == "ok"

    assert len(attempts) == 2
    assert [type(event) for event in received] == [hazina.RetryScheduled]
    logged = [record for record in caplog.records if record.name == "hazina"]
    assert len(logged) == 1
    assert logged[0].levelno == logging.ERROR
    assert logged[0].exc_info is not None
    assert isinstance(logged[0].exc_info[1], RuntimeError)


# -- isolation and the default registry ----------------------------------------------


def test_isolated_registries_do_not_see_each_other() -> None:
    """Policies made in one Registry() are invisible to another."""
    first, second = hazina.Registry(), hazina.Registry()

    policy = first.retry("payments", attempts=5)

    assert len(second) == 0
    with pytest.raises(KeyError):
        second.get("retry", "payments")
    other = second.retry("payments", attempts=2)
    assert other is not policy
    assert first.get("retry", "payments").config.attempts == 5


def test_decorators_use_the_default_registry(default_registry: hazina.Registry) -> None:
    """Without registry=, a decorator registers its policy in hazina.registry."""

    @hazina.circuit_breaker("test_registry.default-registry-probe")
    def call() -> None:
        """Guarded."""

    assert default_registry is hazina.registry
    assert hazina.registry.get("circuit_breaker", "test_registry.default-registry-probe") is (
        call.policy
    )


def test_bare_decorators_use_the_default_registry(default_registry: hazina.Registry) -> None:
    """A bare @retry registers its policy, named after the function, in hazina.registry."""

    @hazina.retry
    def call() -> None:
        """Retried."""

    name = f"{__name__}.test_bare_decorators_use_the_default_registry.<locals>.call"
    assert hazina.registry.get("retry", name) is call.policy


def test_registry_argument_overrides_the_default(
    default_registry: hazina.Registry, registry: hazina.Registry
) -> None:
    """With registry=, the policy lives there and not in hazina.registry."""

    @hazina.retry("test_registry.override-probe", registry=registry)
    def call() -> None:
        """Retried."""

    assert registry.get("retry", "test_registry.override-probe") is call.policy
    with pytest.raises(KeyError):
        hazina.registry.get("retry", "test_registry.override-probe")


class NoSleep:
    """A would-be clock that can tell the time but not wait."""

    def now(self) -> float:
        return 0.0


class NotANumber:
    """A would-be clock whose reading is no number."""

    def now(self) -> str:
        return "noon"

    def sleep(self, seconds: float) -> None:
        """Never called."""

    async def asleep(self, seconds: float) -> None:
        """Never called."""


@pytest.mark.parametrize(
    ("clock", "complaint"),
    [
        (42, r"now\(\), sleep\(\), asleep\(\)"),
        (NoSleep(), r"no sleep\(\), asleep\(\)"),
        (NotANumber(), "finite number of seconds"),
    ],
    ids=["int", "no sleep", "not a number"],
)
def test_registry_refuses_a_clock_that_cannot_serve(clock: object, complaint: str) -> None:
    """Regression (issue 10): ``Registry(clock=...)`` took anything, and the first policy call
    failed far from the mistake; a clock without now/sleep/asleep, or whose reading is no
    number, is a TypeError at once."""
    with pytest.raises(TypeError, match=complaint):
        hazina.Registry(clock=clock)  # type: ignore[arg-type]
