"""How long a retry waits: the backoff curve, its cap, and jitter."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Literal, TypeAlias

Backoff: TypeAlias = (
    Literal["exponential", "linear", "fixed"] | Callable[[int, BaseException | None], float]
)
Jitter: TypeAlias = Literal["full", "equal", "decorrelated"] | None


def base_delay(
    backoff: Backoff,
    attempt: int,
    error: BaseException | None,
    *,
    initial: float,
    multiplier: float,
) -> float:
    """The un-jittered, uncapped wait after failed attempt number ``attempt`` (from 1)."""
    if backoff == "exponential":
        try:
            return float(initial * multiplier ** (attempt - 1))
        except OverflowError:
            return float("inf")
    if backoff == "linear":
        return float(initial * attempt)
    if backoff == "fixed":
        return float(initial)
    delay = float(backoff(attempt, error))
    if not delay >= 0:  # also NaN, which no sleep accepts; +inf is capped by max_delay
        raise ValueError(f"the backoff function returned {delay!r}; expected seconds, 0 or more")
    return delay


def jittered(
    delay: float, jitter: Jitter, *, previous: float, initial: float, max_delay: float
) -> float:
    """Spread ``delay`` (already capped) so that callers who failed together retry apart.

    ``previous`` is this call's previous wait, which decorrelated jitter grows from.
    """
    if jitter is None:
        return delay
    if jitter == "full":
        return random.uniform(0.0, delay)
    if jitter == "equal":
        return delay / 2 + random.uniform(0.0, delay / 2)
    # Decorrelated (AWS): a random walk between `initial` and three times the last wait.
    low = min(initial, max_delay)
    return min(max_delay, random.uniform(low, max(low, previous * 3)))
