"""A retry policy's configuration, and the keyword arguments that build it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict

import attrs

from .._core.conditions import ErrorTest, validate_error_test
from .._core.validation import (
    Duration,
    InvalidValue,
    non_negative_duration,
    one_of,
    optional_callable,
    optional_duration,
    optional_positive_int,
    positive,
    seconds,
)
from .backoff import Backoff, Jitter


def _valid_backoff(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value not in ("exponential", "linear", "fixed") and not callable(value):
        raise InvalidValue(attribute.name, value, "'exponential', 'linear', 'fixed' or a callable")


def _budget_name(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not (isinstance(value, str) and value):
        raise InvalidValue(attribute.name, value, "None or the name of a retry budget")


#: Reads a wait in seconds from a failed outcome (the error, or the rejected result).
RetryAfter = Callable[[Any], float | None]


@attrs.frozen(kw_only=True)
class RetryConfig:
    """A retry policy's configuration; see :func:`hazina.retry`."""

    attempts: int | None = attrs.field(default=3, validator=optional_positive_int)
    timeout: float | None = attrs.field(
        default=None, converter=seconds, validator=optional_duration
    )
    backoff: Backoff = attrs.field(default="exponential", validator=_valid_backoff)
    initial: float = attrs.field(default=1.0, converter=seconds, validator=non_negative_duration)
    multiplier: float = attrs.field(default=2.0, validator=positive)
    max_delay: float = attrs.field(default=30.0, converter=seconds, validator=non_negative_duration)
    jitter: Jitter = attrs.field(
        default="full", validator=one_of("full", "equal", "decorrelated", None)
    )
    on: ErrorTest = attrs.field(default=Exception, validator=validate_error_test)
    on_result: Callable[[Any], bool] | None = attrs.field(
        default=None, validator=optional_callable("a predicate over the result")
    )
    retry_after: RetryAfter | None = attrs.field(
        default=None, validator=optional_callable("a function (outcome) -> seconds or None")
    )
    budget: str | None = attrs.field(default=None, validator=_budget_name)

    def __attrs_post_init__(self) -> None:
        if self.attempts is None and self.timeout is None:
            # Without either, a dependency that never recovers is retried for ever.
            raise InvalidValue(
                "attempts", None, "a whole number of 1 or more (None needs a timeout)"
            )


class RetryOptions(TypedDict, total=False):
    """Keyword arguments of :func:`hazina.retry` and its factory."""

    attempts: int | None
    timeout: Duration | None
    backoff: Backoff
    initial: Duration
    multiplier: float
    max_delay: Duration
    jitter: Jitter
    on: ErrorTest
    on_result: Callable[[Any], bool] | None
    retry_after: RetryAfter | None
    budget: str | None
