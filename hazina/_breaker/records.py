"""What a circuit breaker reports: its state, its stats, and its events."""

from __future__ import annotations

import enum
import logging

import attrs


class CircuitState(enum.StrEnum):
    """Where a breaker stands."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    FORCED_OPEN = "forced_open"


CLOSED = CircuitState.CLOSED


OPEN = CircuitState.OPEN


HALF_OPEN = CircuitState.HALF_OPEN


FORCED_OPEN = CircuitState.FORCED_OPEN


@attrs.frozen
class CircuitBreakerStats:
    """A breaker's counters since creation or ``reset()``; rates over the current window."""

    state: CircuitState
    calls: int
    successes: int
    failures: int
    ignored: int
    rejections: int
    slow_calls: int
    failure_rate: float | None
    slow_call_rate: float | None
    retry_after: float | None
    #: Round trips to a shared backend that failed (always 0 in memory).
    backend_errors: int = 0


@attrs.frozen
class CircuitStateChanged:
    """A breaker moved from ``old`` to ``new`` state."""

    name: str
    old: CircuitState
    new: CircuitState

    def log_level(self) -> int:
        """Opening is news for whoever is on call; probing and closing are routine."""
        opened = self.new is CircuitState.OPEN or self.new is CircuitState.FORCED_OPEN
        return logging.WARNING if opened else logging.INFO


@attrs.frozen
class CallRejected:
    """A breaker refused a call while ``state``; ``retry_after`` as in the error."""

    name: str
    state: CircuitState
    retry_after: float | None


# What a call's outcome means to the breaker.
SUCCESS, FAILURE, IGNORED = 0, 1, 2
