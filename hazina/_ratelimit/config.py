"""A rate limiter's configuration: its limits, its algorithm, and how a call is charged."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any, Literal, TypedDict

import attrs

from .._core.validation import (
    BACKEND_ERROR_CHOICES,
    MAX_COUNT,
    BackendErrorChoice,
    Duration,
    InvalidValue,
    boolean,
    is_finite_number,
    one_of,
    optional_at_least_one,
    optional_callable,
    optional_duration,
    optional_non_negative_duration,
    optional_positive,
    positive_int,
    seconds,
    unit_interval,
)
from .limit import LIMIT_FORMAT, Limit, limit_problem, parse_limit, split_limits

Algorithm = Literal["token_bucket", "sliding_window", "gcra"]
#: What ``limits=`` accepts: limit strings and :class:`Limit` objects, or one of either.
LimitsSpec = Sequence[str | Limit] | str | Limit
#: A call's cost: a number of tokens, or a function of the call's arguments giving one.
Cost = float | Callable[..., float]

ALGORITHM_NAMES = ("token_bucket", "sliding_window", "gcra")


def _to_limits(value: LimitsSpec | None) -> tuple[Limit, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str | Limit) else value
    if not isinstance(items, Sequence) or not items:
        raise InvalidValue("limits", value, "a non-empty list of limits like '10/second'")
    limits = []
    for item in items:
        if isinstance(item, Limit):
            limits.append(item)
            continue
        if not isinstance(item, str):
            raise InvalidValue("limits", item, f"a Limit or a string, {LIMIT_FORMAT}")
        for part in split_limits(item):
            try:
                limits.append(parse_limit(part))
            except ValueError:
                # Name the part, not the whole string: "10/second; 5/fortnight" shows which.
                raise InvalidValue("limits", part, LIMIT_FORMAT) from None
    return tuple(limits)


def _cost(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    # 0 is a free call, as from acquire(cost=0) or a cost function: admitted at once.
    if not (callable(value) or (is_finite_number(value) and 0 <= value <= MAX_COUNT)):
        raise InvalidValue(
            attribute.name, value, "a number of 0 or more or a function of the call's arguments"
        )


_key_function = optional_callable("a function of the call's arguments")


@attrs.frozen(kw_only=True)
class RateLimiterConfig:
    """A rate limiter's configuration; see :func:`hazina.rate_limited`.

    ``limits`` is the canonical form: ``rate``/``per``/``burst`` fill it with one
    :class:`Limit`, so ``rate=10`` equals ``limits=["10/second"]`` (the three are kept
    for reading but take no part in equality).
    """

    rate: float | None = attrs.field(default=None, validator=optional_positive, eq=False)
    per: float | None = attrs.field(
        default=None, converter=seconds, validator=optional_duration, eq=False
    )
    burst: float | None = attrs.field(default=None, validator=optional_at_least_one, eq=False)
    limits: tuple[Limit, ...] = attrs.field(default=None, converter=_to_limits)
    algorithm: Algorithm = attrs.field(default="token_bucket", validator=one_of(*ALGORITHM_NAMES))
    max_keys: int = attrs.field(default=100_000, validator=positive_int)
    key: Callable[..., Hashable] | None = attrs.field(default=None, validator=_key_function)
    cost: Cost = attrs.field(default=1, validator=_cost)
    wait: bool = attrs.field(default=False, validator=boolean)
    max_wait: float | None = attrs.field(
        default=None, converter=seconds, validator=optional_non_negative_duration
    )
    on_backend_error: BackendErrorChoice = attrs.field(
        default="local", validator=one_of(*BACKEND_ERROR_CHOICES)
    )
    local_fraction: float = attrs.field(default=1.0, validator=unit_interval)
    dry_run: bool = attrs.field(default=False, validator=boolean)

    def __attrs_post_init__(self) -> None:
        self._resolve_limits()
        if self.algorithm == "sliding_window":
            for limit in self.limits:
                if limit.burst != limit.rate:
                    raise InvalidValue(
                        "burst",
                        limit.burst,
                        f"left out with the sliding window, which admits at most rate "
                        f"({limit.rate:g}) in any {limit.per:g} seconds",
                    )
        if not callable(self.cost) and self.cost > self.capacity:
            raise InvalidValue(
                "cost",
                self.cost,
                f"at most the capacity ({self.capacity:g}), or no call could ever be admitted",
            )
        if self.max_wait is not None and not self.wait:
            raise InvalidValue("max_wait", self.max_wait, "None unless wait=True")

    def _resolve_limits(self) -> None:
        single = self.rate is not None or self.per is not None or self.burst is not None
        if self.limits:
            if single:
                raise InvalidValue(
                    "limits", list(self.limits), "given alone, without rate, per or burst"
                )
            return
        if self.rate is None:
            raise InvalidValue(
                "rate", None, "a number above 0 (there is no default: give rate= or limits=)"
            )
        per = 1.0 if self.per is None else self.per
        burst = self.rate if self.burst is None else self.burst
        if burst < 1:
            raise InvalidValue(
                "burst", burst, "a number of 1 or more (it defaults to rate: give burst= too)"
            )
        problem = limit_problem(self.rate, per, burst)
        if problem is not None:
            raise InvalidValue(*problem)
        # Frozen, but this is construction: fill in the derived values once.
        object.__setattr__(self, "per", per)
        object.__setattr__(self, "burst", burst)
        object.__setattr__(self, "limits", (Limit(self.rate, per, burst),))

    @property
    def capacity(self) -> float:
        """The largest cost any call can have: the smallest burst (or window rate)."""
        if self.algorithm == "sliding_window":
            return min(limit.rate for limit in self.limits)
        return min(limit.burst for limit in self.limits)


class RateLimiterOptions(TypedDict, total=False):
    """Keyword arguments of :func:`hazina.rate_limited` and its factory."""

    rate: float | None
    per: Duration | None
    burst: float | None
    limits: LimitsSpec
    algorithm: Algorithm
    max_keys: int
    key: Callable[..., Hashable] | None
    cost: Cost
    wait: bool
    max_wait: Duration | None
    on_backend_error: BackendErrorChoice
    local_fraction: float
    dry_run: bool
