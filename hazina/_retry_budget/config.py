"""A retry budget's configuration, and the keyword arguments that build it."""

from __future__ import annotations

from typing import Any, TypedDict

import attrs

from .._core.validation import (
    MAX_SECONDS,
    Duration,
    InvalidValue,
    is_finite_number,
    non_negative,
    seconds,
)

#: The shortest window: its tenths are numbered by dividing clock readings by them, and
#: a shorter one numbers them beyond float range (or divides by zero) at the first retry.
MIN_WINDOW = 0.001


def _window(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not (is_finite_number(value) and MIN_WINDOW <= value <= MAX_SECONDS):
        raise InvalidValue(
            attribute.name, value, f"a number of seconds from {MIN_WINDOW:g} to {MAX_SECONDS:g}"
        )


@attrs.frozen(kw_only=True)
class RetryBudgetConfig:
    """A retry budget's configuration; see :meth:`hazina.Registry.retry_budget`."""

    ratio: float = attrs.field(default=0.2, validator=non_negative)
    min_per_second: float = attrs.field(default=10.0, validator=non_negative)
    window: float = attrs.field(default=10.0, converter=seconds, validator=_window)


class RetryBudgetOptions(TypedDict, total=False):
    """Keyword arguments of ``registry.retry_budget``."""

    ratio: float
    min_per_second: float
    window: Duration
