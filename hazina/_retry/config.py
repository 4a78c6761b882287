"""A retry policy's configuration, and the keyword arguments that build it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict

import attrs

from .._core.conditions import ErrorTest, validate_error_test
from .._core.validation import (
    InvalidValue,
    non_negative_duration,
    one_of,
    optional_callable,
    optional_duration,
    positive,
    positive_int,
)
from .backoff import Backoff, Jitter


def _valid_backoff(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value not in ("exponential", "linear", "fixed") and not callable(value):
        raise InvalidValue(attribute.name, value, "'exponential', 'linear', 'fixed' or a callable")


@attrs.frozen(kw_only=True)
class RetryConfig:
    """A retry policy's configuration; see :func:`hazina.retry`."""

    attempts: int = attrs.field(default=3, validator=positive_int)
    timeout: float | None = attrs.field(default=None, validator=optional_duration)
    backoff: Backoff = attrs.field(default="exponential", validator=_valid_backoff)
    initial: float = attrs.field(default=1.0, validator=non_negative_duration)
    multiplier: float = attrs.field(default=2.0, validator=positive)
    max_delay: float = attrs.field(default=30.0, validator=non_negative_duration)
    jitter: Jitter = attrs.field(
        default="full", validator=one_of("full", "equal", "decorrelated", None)
    )
    on: ErrorTest = attrs.field(default=Exception, validator=validate_error_test)
    on_result: Callable[[Any], bool] | None = attrs.field(
        default=None, validator=optional_callable("a predicate over the result")
    )


class RetryOptions(TypedDict, total=False):
    """Keyword arguments of :func:`hazina.retry` and its factory."""

    attempts: int
    timeout: float | None
    backoff: Backoff
    initial: float
    multiplier: float
    max_delay: float
    jitter: Jitter
    on: ErrorTest
    on_result: Callable[[Any], bool] | None
