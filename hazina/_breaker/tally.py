"""A breaker's counters kept apart from its state, for state that comes and goes.

A keyed breaker forgets keys, and a breaker on Redis keeps its state there: the counts
of this process's calls live here instead, lock-free and exact.
"""

from __future__ import annotations

from .._core.counters import Counter, new_counter, read_counter
from .records import FAILURE, IGNORED, CircuitBreakerStats, CircuitState


class Tally:
    """A keyed breaker's counters over all its keys; lock-free and exact."""

    __slots__ = ("completions", "failures", "ignored", "rejections", "slow_calls")

    def __init__(self) -> None:
        self.completions: Counter = new_counter()
        self.failures: Counter = new_counter()
        self.ignored: Counter = new_counter()
        self.rejections: Counter = new_counter()
        self.slow_calls: Counter = new_counter()

    def count(self, outcome: int, slow: bool) -> None:
        """Count one completed call (``outcome`` as in ``records``)."""
        if outcome != IGNORED:
            next(self.completions)
        self.note(outcome, slow)

    def note(self, outcome: int, slow: bool) -> None:
        """Count a completed call's outcome, but not in ``completions``."""
        if outcome == IGNORED:
            next(self.ignored)
            return
        if outcome == FAILURE:
            next(self.failures)
        if slow:
            next(self.slow_calls)

    def read(self) -> tuple[int, int, int, int, int]:
        """``(completions, failures, ignored, rejections, slow calls)`` so far."""
        return (
            read_counter(self.completions),
            read_counter(self.failures),
            read_counter(self.ignored),
            read_counter(self.rejections),
            read_counter(self.slow_calls),
        )


def tallied_stats(
    counts: tuple[int, int, int, int, int],
    state: CircuitState,
    *,
    failure_rate: float | None = None,
    slow_call_rate: float | None = None,
    retry_after: float | None = None,
    backend_errors: int = 0,
    open_keys: int = 0,
) -> CircuitBreakerStats:
    """Stats from ``counts`` as :meth:`Tally.read` gives them, and the state's readings."""
    completions, failures, ignored, rejections, slow_calls = counts
    return CircuitBreakerStats(
        state=state,
        calls=completions + ignored,
        successes=completions - failures,
        failures=failures,
        ignored=ignored,
        rejections=rejections,
        slow_calls=slow_calls,
        failure_rate=failure_rate,
        slow_call_rate=slow_call_rate,
        retry_after=retry_after,
        backend_errors=backend_errors,
        open_keys=open_keys,
    )
