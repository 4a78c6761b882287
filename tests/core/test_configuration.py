"""Configuration validation: bad values fail at decoration time with a message that says why."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

import hazina

BAD_BREAKER_VALUES: list[tuple[str, object]] = [
    ("failure_rate", 0),
    ("failure_rate", 1.5),
    ("failure_rate", -0.1),
    ("failure_rate", "x"),
    ("minimum_calls", 0),
    ("minimum_calls", 2.5),
    ("minimum_calls", True),
    ("failure_threshold", 0),
    ("window", "sliding"),
    ("window_size", 0),
    ("slow_call_duration", 0),
    ("slow_call_duration", -1),
    ("slow_call_rate", 0),
    ("slow_call_rate", 2),
    ("open_for", 0),
    ("open_for", -5),
    ("open_for", float("nan")),
    ("open_for", float("inf")),
    ("half_open_max_calls", 0),
    ("success_threshold", 0),
    ("half_open_timeout", 0),
    ("failure_on", 42),
    ("ignore_on", "x"),
]

BAD_RETRY_VALUES: list[tuple[str, object]] = [
    ("attempts", 0),
    ("attempts", -1),
    ("attempts", 1.5),
    ("attempts", True),
    ("timeout", 0),
    ("timeout", -1),
    ("backoff", "cubic"),
    ("initial", -1),
    ("multiplier", 0),
    ("max_delay", -1),
    ("jitter", "random"),
    ("on", 42),
    ("on_result", 5),
]

BAD_VALUES = [
    pytest.param(hazina.circuit_breaker, param, value, id=f"circuit_breaker-{param}={value!r}")
    for param, value in BAD_BREAKER_VALUES
] + [
    pytest.param(hazina.retry, param, value, id=f"retry-{param}={value!r}")
    for param, value in BAD_RETRY_VALUES
]


def operation() -> None:
    """The function every decoration in this module targets."""


def assert_explains(error: hazina.ConfigurationError, *parts: str) -> None:
    """The error is also a ValueError and its message contains every one of ``parts``."""
    assert isinstance(error, ValueError)
    assert isinstance(error, hazina.HazinaError)
    message = str(error)
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"


@pytest.mark.parametrize(("decorator", "param", "value"), BAD_VALUES)
def test_invalid_value_fails_at_decoration_time(
    registry: hazina.Registry, decorator: Callable[..., Any], param: str, value: object
) -> None:
    """A bad value raises ConfigurationError naming the policy, the parameter and the value."""
    options: dict[str, Any] = {param: value}

    with pytest.raises(hazina.ConfigurationError) as raised:
        decorator("payments", registry=registry, **options)(operation)

    assert_explains(raised.value, "'payments'", param, repr(value))
    # Nothing half-made is left behind to clash with the corrected configuration.
    assert len(registry) == 0


@pytest.mark.parametrize(("decorator", "param", "value"), BAD_VALUES)
def test_invalid_value_fails_in_the_factory(
    registry: hazina.Registry, decorator: Callable[..., Any], param: str, value: object
) -> None:
    """The registry's factories validate like the decorators do."""
    factory: Callable[..., Any] = getattr(registry, decorator.__name__)
    options: dict[str, Any] = {param: value}

    with pytest.raises(hazina.ConfigurationError) as raised:
        factory("payments", **options)

    assert_explains(raised.value, "'payments'", param, repr(value))


def test_invalid_value_without_a_name_mentions_the_default_name(
    registry: hazina.Registry,
) -> None:
    """Without an explicit name, the message names the policy by its default name."""
    with pytest.raises(hazina.ConfigurationError) as raised:
        hazina.retry(registry=registry, attempts=0)(operation)

    assert_explains(raised.value, "test_configuration.operation", "attempts", "0")


def test_minimum_calls_above_a_count_window_is_refused(registry: hazina.Registry) -> None:
    """minimum_calls larger than a count window's size could never be met, so it is refused."""
    with pytest.raises(hazina.ConfigurationError) as raised:
        hazina.circuit_breaker("payments", registry=registry, minimum_calls=20, window_size=10)(
            operation
        )

    assert_explains(raised.value, "'payments'", "minimum_calls", "20")


def test_minimum_calls_above_the_default_count_window_is_refused(
    registry: hazina.Registry,
) -> None:
    """minimum_calls is checked against the default window_size of 100 too."""
    with pytest.raises(hazina.ConfigurationError) as raised:
        registry.circuit_breaker("payments", minimum_calls=101)

    assert_explains(raised.value, "'payments'", "minimum_calls", "101")


def test_minimum_calls_above_a_time_window_size_is_accepted(registry: hazina.Registry) -> None:
    """A time window's size is in seconds, not calls, so it does not bound minimum_calls."""
    breaker = registry.circuit_breaker("payments", window="time", window_size=10, minimum_calls=50)

    assert breaker.config.minimum_calls == 50


@pytest.mark.parametrize(
    ("decorator", "options"),
    [
        (hazina.circuit_breaker, {"failure_rate": 1}),
        (hazina.circuit_breaker, {"failure_rate": 0.01, "slow_call_rate": 1.0}),
        (hazina.circuit_breaker, {"minimum_calls": 100, "window_size": 100}),
        (hazina.circuit_breaker, {"failure_threshold": None}),
        (hazina.circuit_breaker, {"slow_call_duration": None}),
        (hazina.circuit_breaker, {"slow_call_duration": 0.25}),
        (hazina.circuit_breaker, {"open_for": 0.001, "half_open_timeout": 1e9}),
        (hazina.circuit_breaker, {"failure_on": (OSError, ValueError)}),
        (hazina.circuit_breaker, {"failure_on": lambda error: True, "ignore_on": KeyError}),
        (hazina.retry, {"attempts": 1}),
        (hazina.retry, {"timeout": None}),
        (hazina.retry, {"timeout": 0.5}),
        (hazina.retry, {"initial": 0, "max_delay": 0}),
        (hazina.retry, {"backoff": lambda attempt, error: 1.0}),
        (hazina.retry, {"jitter": None}),
        (hazina.retry, {"jitter": "decorrelated", "backoff": "linear"}),
        (hazina.retry, {"on": hazina.when(OSError) | ValueError}),
        (hazina.retry, {"on_result": lambda result: result is None}),
    ],
)
def test_valid_boundary_values_are_accepted(
    registry: hazina.Registry, decorator: Callable[..., Any], options: dict[str, Any]
) -> None:
    """Values at the edge of what is allowed decorate without error."""
    wrapped = decorator("payments", registry=registry, **options)(operation)

    for param, value in options.items():
        assert getattr(wrapped.policy.config, param) == value


@pytest.mark.parametrize(
    ("decorator", "typo", "meant"),
    [
        (hazina.retry, "attemps", "attempts"),
        (hazina.retry, "max_dealy", "max_delay"),
        (hazina.retry, "on_results", "on_result"),
        (hazina.circuit_breaker, "failure_treshold", "failure_threshold"),
        (hazina.circuit_breaker, "open_fr", "open_for"),
        (hazina.circuit_breaker, "windowsize", "window_size"),
    ],
)
def test_unknown_parameter_suggests_the_close_match(
    registry: hazina.Registry, decorator: Callable[..., Any], typo: str, meant: str
) -> None:
    """A misspelt parameter raises ConfigurationError naming it and suggesting the right one."""
    options: dict[str, Any] = {typo: 3}

    with pytest.raises(hazina.ConfigurationError) as raised:
        decorator("payments", registry=registry, **options)(operation)

    assert_explains(raised.value, "'payments'", repr(typo), f"did you mean {meant!r}")
    assert len(registry) == 0


def test_unknown_parameter_without_a_close_match_is_still_refused(
    registry: hazina.Registry,
) -> None:
    """A parameter unlike any known one is refused, naming it, with no misleading suggestion."""
    options: dict[str, Any] = {"zzz": 1}

    with pytest.raises(hazina.ConfigurationError) as raised:
        registry.retry("payments", **options)

    assert_explains(raised.value, "'payments'", "'zzz'")
    assert "did you mean" not in str(raised.value)


@pytest.mark.parametrize("name", ["", 42, None])
def test_factory_refuses_a_name_that_is_not_a_non_empty_string(
    registry: hazina.Registry, name: Any
) -> None:
    """A factory's name must be a non-empty string."""
    with pytest.raises(hazina.ConfigurationError, match="name"):
        registry.retry(name)


#: Finite numbers that pass "above 0" but no sleep, lock timeout or float sum can use.
ABSURD_DURATIONS = [
    pytest.param(hazina.circuit_breaker, {"open_for": 1e300}, "open_for", id="breaker-open_for"),
    pytest.param(
        hazina.circuit_breaker, {"half_open_timeout": 1e12}, "half_open_timeout", id="half_open"
    ),
    pytest.param(
        hazina.circuit_breaker, {"slow_call_duration": 1e300}, "slow_call_duration", id="slow"
    ),
    pytest.param(hazina.retry, {"initial": 1e300, "max_delay": 1e300}, "initial", id="initial"),
    pytest.param(hazina.retry, {"max_delay": 1e10}, "max_delay", id="max_delay"),
    pytest.param(hazina.retry, {"timeout": 1e300}, "timeout", id="retry-timeout"),
    pytest.param(hazina.cached, {"ttl": 1e300}, "ttl", id="ttl"),
    pytest.param(hazina.cached, {"sliding": 1e300}, "sliding", id="sliding"),
    pytest.param(hazina.rate_limited, {"rate": 1, "per": 1e300}, "per", id="per"),
    pytest.param(
        hazina.rate_limited, {"rate": 1, "wait": True, "max_wait": 1e300}, "max_wait", id="max_wait"
    ),
]


@pytest.mark.parametrize(("decorator", "options", "param"), ABSURD_DURATIONS)
def test_durations_beyond_the_longest_wait_are_refused_at_decoration_time(
    registry: hazina.Registry, decorator: Callable[..., Any], options: dict[str, Any], param: str
) -> None:
    """Regression (issue 10): finite but absurd durations passed validation and failed at call
    time (``time.sleep`` raises OverflowError beyond ``threading.TIMEOUT_MAX``); every
    duration is now at most that, refused up front with the policy, parameter and value."""
    with pytest.raises(hazina.ConfigurationError) as raised:
        decorator("payments", registry=registry, **options)(operation)

    assert_explains(raised.value, "'payments'", param, repr(options[param]))
    assert len(registry) == 0


def test_the_longest_duration_is_the_longest_wait_the_interpreter_accepts(
    registry: hazina.Registry,
) -> None:
    """A duration of exactly ``threading.TIMEOUT_MAX`` seconds is still accepted."""
    longest = threading.TIMEOUT_MAX

    breaker = registry.circuit_breaker("b", open_for=longest)
    retry = registry.retry("r", max_delay=longest, timeout=longest)

    assert breaker.config.open_for == longest
    assert retry.config.max_delay == longest


def test_a_health_check_timeout_beyond_the_longest_wait_is_refused(
    registry: hazina.Registry,
) -> None:
    """Regression (issue 10): the health check timeout is bounded like every duration."""
    with pytest.raises(hazina.ConfigurationError, match="timeout"):
        registry.health_check("db", operation, timeout=1e300)


def test_a_junk_registry_argument_is_a_type_error_naming_it() -> None:
    """Regression (issue 10): ``registry=`` given something else than a Registry failed with
    an AttributeError from deep inside; it is a TypeError saying what was expected."""
    decorators: list[Callable[..., Any]] = [
        hazina.retry,
        hazina.circuit_breaker,
        hazina.cached,
        hazina.rate_limited,
    ]
    for decorator in decorators:
        options: dict[str, Any] = {"rate": 1} if decorator is hazina.rate_limited else {}
        with pytest.raises(TypeError, match=r"registry= must be a hazina\.Registry"):
            decorator("payments", registry="production", **options)(operation)
