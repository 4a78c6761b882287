"""Retry budget: caps the retries of every retry policy sharing it to a share of the calls.

Retries multiply load exactly when a dependency is weakest. A budget lets retries add
at most ``ratio`` of the first attempts seen in the last ``window`` seconds, plus a
reserve of ``min_per_second * window`` that needs no first attempts (so a quiet service
still retries its rare failures).
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

from .._core.counters import Counter, new_counter, read_counter
from .._core.forks import fresh_lock, reset_after_fork
from .._core.host import Host
from .._core.policy import Policy
from .config import RetryBudgetConfig
from .records import RetryBudgetStats
from .window import Marks

# A product such as 0.29 * 100 lands just under 29 in floating point; never refuse for that.
_ROUNDING = 1e-9


class RetryBudget(Policy[RetryBudgetConfig, RetryBudgetStats]):
    """A named retry budget; get one from ``registry.retry_budget(name, ...)`` and share
    it with ``@retry(..., budget=name)``.

    It wraps no calls of its own: retry policies count their first attempts into it
    (:meth:`deposit`) and ask it before each retry (:meth:`withdraw`).
    """

    kind = "retry_budget"
    config_class = RetryBudgetConfig

    def __init__(self, name: str, config: RetryBudgetConfig, host: Host) -> None:
        super().__init__(name, config, host)
        self._lock = threading.Lock()
        reset_after_fork(self)
        self._reserve = config.min_per_second * config.window
        # First attempts are counted lock-free in two places: a sharing retry policy's own
        # count of first-try successes (a source: its hot path bumps nothing else), and
        # this counter for every other first attempt (those that failed).
        self.first_attempts: Counter = new_counter()
        self._sources: tuple[Counter, ...] = ()
        self._retries = 0  # running total; only ever changed under the lock
        self._fresh_state()

    def _after_fork_in_child(self) -> None:
        fresh_lock(self._lock)

    def _fresh_state(self) -> None:
        self._attempts_base = self._first_attempts()
        self._retries_base = self._retries
        self._refused: int = 0
        self._marks: Marks = Marks(self.config.window)
        #: When the current bucket ends; a call at or after it rolls the window (:meth:`roll`).
        self.next_bucket_at: float = float("-inf")
        # Clock readings are moved by `_offset` so that they never run backwards: a step
        # back (freezegun's freeze_time ending) counts as no time passing, where it would
        # leave the window ahead of the clock, and every retry refused, for the step.
        self._offset = 0.0
        self._latest = float("-inf")

    def _apply_config(self, config: RetryBudgetConfig) -> None:
        # Totals are kept; the marks of the last window are kept unless its length changed.
        with self._lock:
            self._reserve = config.min_per_second * config.window
            if config.window != self.config.window:
                self._marks = Marks(config.window)
                self.next_bucket_at = float("-inf")
            self.config = config

    def reset(self) -> None:
        with self._lock:
            self._fresh_state()

    def stats(self) -> RetryBudgetStats:
        with self._lock:
            return RetryBudgetStats(
                attempts=self._first_attempts() - self._attempts_base,
                retries=self._retries - self._retries_base,
                refused=self._refused,
            )

    # -- what retry policies call ------------------------------------------------

    def attach(self, first_try_successes: Counter) -> None:
        """Count a sharing retry policy's first-try successes as first attempts.

        The counter must be new (at zero): what it counted before would land in the
        current bucket.
        """
        with self._lock:
            self._sources = (*self._sources, first_try_successes)

    def deposit(self, now: float) -> None:
        """Count one first attempt made at ``now`` that no attached counter counts.

        Retry drivers inline the comparison on their hot path and deposit only failed
        first attempts; a successful one is in their attached counter.
        """
        if now >= self.next_bucket_at:
            self.roll(now)
        next(self.first_attempts)

    def _first_attempts(self) -> int:
        """All first attempts counted so far (since creation, not reset)."""
        return read_counter(self.first_attempts) + sum(map(read_counter, self._sources))

    def roll(self, now: float) -> None:
        """Mark the bucket holding ``now`` if it is new: once per bucket, not per call."""
        with self._lock:
            self._roll(now)

    def _roll(self, now: float) -> float:
        """Mark the bucket holding ``now``; ``now`` on the budget's own time scale."""
        at = now + self._offset
        if at < self._latest:  # the clock stepped back
            self._offset += self._latest - at
            at = self._latest
        self._latest = at
        marks = self._marks
        next_at = marks.leave(marks.bucket(at), self._first_attempts(), self._retries)
        # On the clock's scale, as the retry drivers compare their own readings with it.
        self.next_bucket_at = next_at - self._offset
        return at

    def withdraw(self, now: float) -> bool:
        """Take one retry at ``now`` if the budget allows it; count it either way."""
        with self._lock:
            at = self._roll(now)
            oldest = self._marks.oldest_in_window(at)
            attempts = self._first_attempts() - oldest.attempts
            retries = self._retries - oldest.retries
            if retries + 1 <= self.config.ratio * attempts + self._reserve + _ROUNDING:
                self._retries += 1
                return True
            self._refused += 1
            return False

    # -- a budget wraps no calls ---------------------------------------------------

    def _sync_driver(self, fn: Callable[..., Any]) -> NoReturn:
        raise TypeError(f"retry budget {self.name!r} wraps no calls; use @retry(budget=...)")

    def _async_driver(self, fn: Callable[..., Awaitable[Any]]) -> NoReturn:
        raise TypeError(f"retry budget {self.name!r} wraps no calls; use @retry(budget=...)")
