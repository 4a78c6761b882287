"""A circuit breaker's configuration, and the keyword arguments that build it."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, Literal, TypedDict

import attrs

from .._core.conditions import ErrorTest, validate_error_test, validate_optional_error_test
from .._core.validation import (
    BACKEND_ERROR_CHOICES,
    MAX_SECONDS,
    BackendErrorChoice,
    Duration,
    InvalidValue,
    boolean,
    duration,
    is_finite_number,
    one_of,
    optional_callable,
    optional_duration,
    optional_positive_int,
    optional_unit_interval,
    positive_int,
    seconds,
    unit_interval,
)


def _multiplier(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not (is_finite_number(value) and value >= 1):
        raise InvalidValue(attribute.name, value, "a number of 1 or more")


_key_function = optional_callable("a function of the call's arguments")


@attrs.frozen(kw_only=True)
class CircuitBreakerConfig:
    """A circuit breaker's configuration; see :func:`hazina.circuit_breaker`."""

    failure_rate: float | None = attrs.field(default=0.5, validator=optional_unit_interval)
    minimum_calls: int = attrs.field(default=10, validator=positive_int)
    failure_threshold: int | None = attrs.field(default=5, validator=optional_positive_int)
    window: Literal["count", "time"] = attrs.field(
        default="count", validator=one_of("count", "time")
    )
    window_size: int = attrs.field(
        default=attrs.Factory(lambda self: 60 if self.window == "time" else 100, takes_self=True),
        validator=positive_int,
    )
    slow_call_duration: float | None = attrs.field(
        converter=seconds, default=None, validator=optional_duration
    )
    slow_call_rate: float = attrs.field(default=1.0, validator=unit_interval)
    open_for: float = attrs.field(converter=seconds, default=30.0, validator=duration)
    half_open_max_calls: int = attrs.field(default=1, validator=positive_int)
    success_threshold: int = attrs.field(default=2, validator=positive_int)
    half_open_timeout: float = attrs.field(
        converter=seconds,
        default=attrs.Factory(lambda self: self.open_for, takes_self=True),
        validator=duration,
    )
    failure_on: ErrorTest = attrs.field(default=Exception, validator=validate_error_test)
    ignore_on: ErrorTest | None = attrs.field(default=None, validator=validate_optional_error_test)
    on_backend_error: BackendErrorChoice = attrs.field(
        default="local", validator=one_of(*BACKEND_ERROR_CHOICES)
    )
    key: Callable[..., Hashable] | None = attrs.field(default=None, validator=_key_function)
    max_keys: int = attrs.field(default=10_000, validator=positive_int)
    open_for_multiplier: float = attrs.field(default=1.0, validator=_multiplier)
    max_open_for: float = attrs.field(
        converter=seconds,
        default=attrs.Factory(lambda self: min(10 * self.open_for, MAX_SECONDS), takes_self=True),
        validator=duration,
    )
    dry_run: bool = attrs.field(default=False, validator=boolean)

    def __attrs_post_init__(self) -> None:
        if self.max_open_for < self.open_for:
            raise InvalidValue(
                "max_open_for",
                self.max_open_for,
                f"at least open_for ({self.open_for:g}), the open time it caps",
            )
        if self.window == "count" and self.minimum_calls > self.window_size:
            raise InvalidValue(
                "minimum_calls",
                self.minimum_calls,
                f"at most window_size ({self.window_size}), or the rate rules never apply",
            )


class CircuitBreakerOptions(TypedDict, total=False):
    """Keyword arguments of :func:`hazina.circuit_breaker` and its factory."""

    failure_rate: float | None
    minimum_calls: int
    failure_threshold: int | None
    window: Literal["count", "time"]
    window_size: int
    slow_call_duration: Duration | None
    slow_call_rate: float
    open_for: Duration
    half_open_max_calls: int
    success_threshold: int
    half_open_timeout: Duration
    failure_on: ErrorTest
    ignore_on: ErrorTest | None
    on_backend_error: BackendErrorChoice
    key: Callable[..., Hashable] | None
    max_keys: int
    open_for_multiplier: float
    max_open_for: Duration
    dry_run: bool
