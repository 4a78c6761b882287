"""A retry budget's configuration, and the keyword arguments that build it."""

from __future__ import annotations

from typing import TypedDict

import attrs

from .._core.validation import Duration, duration, non_negative, seconds


@attrs.frozen(kw_only=True)
class RetryBudgetConfig:
    """A retry budget's configuration; see :meth:`hazina.Registry.retry_budget`."""

    ratio: float = attrs.field(default=0.2, validator=non_negative)
    min_per_second: float = attrs.field(default=10.0, validator=non_negative)
    window: float = attrs.field(default=10.0, converter=seconds, validator=duration)


class RetryBudgetOptions(TypedDict, total=False):
    """Keyword arguments of ``registry.retry_budget``."""

    ratio: float
    min_per_second: float
    window: Duration
