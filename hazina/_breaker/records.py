"""What a circuit breaker reports: its state, its stats, and its events."""

from __future__ import annotations

import enum
import logging
from collections.abc import Hashable

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
    #: Keys open or half-open now (keyed breakers; always 0 without ``key=``).
    open_keys: int = 0


@attrs.frozen
class CircuitStateChanged:
    """A breaker (the state of ``key``, for a keyed breaker) moved from ``old`` to ``new``."""

    name: str
    old: CircuitState
    new: CircuitState
    #: The key whose state moved (``None`` for a breaker without ``key=``).
    key: Hashable = attrs.field(default=None, kw_only=True)
    #: Whether a dry-run breaker made this decision (it refuses nothing).
    dry_run: bool = attrs.field(default=False, kw_only=True)

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
    #: The key refused (``None`` for a breaker without ``key=``).
    key: Hashable = attrs.field(default=None, kw_only=True)
    #: Whether a dry-run breaker made this decision: the call ran anyway.
    dry_run: bool = attrs.field(default=False, kw_only=True)


# What a call's outcome means to the breaker.
SUCCESS, FAILURE, IGNORED = 0, 1, 2
