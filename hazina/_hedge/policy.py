"""Hedge: when a call is slow, start another attempt beside it, and take the first success."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from .._core.conditions import when
from .._core.counters import Counter, new_counter, read_counter
from .._core.forks import fresh_lock, reset_after_fork
from .._core.host import Host
from .._core.policy import Policy
from .._core.validation import is_finite_number
from .config import DELAY_EXPECTED, HedgeConfig
from .drivers import async_driver, sync_driver
from .records import HedgeStarted, HedgeStats

#: The longest wait a lock accepts; a longer delay means "never hedge after a delay".
LONGEST_DELAY = threading.TIMEOUT_MAX


class Hedge(Policy[HedgeConfig, HedgeStats]):
    """A named hedging policy; get one from ``registry.hedge(name, ...)``.

    Delays run on real time (``time.monotonic`` and the event loop's clock) whatever
    the registry's clock: a hedge exists to race real latency.
    """

    kind = "hedge"
    config_class = HedgeConfig

    def __init__(self, name: str, config: HedgeConfig, host: Host) -> None:
        super().__init__(name, config, host)
        self._on = when(config.on)
        delay = config.delay
        #: The delay before the next hedge of a call, read once per call.
        self.delay_of: Callable[[], float] = (
            itertools.repeat(min(float(delay), LONGEST_DELAY)).__next__
            if not callable(delay)
            else self._computed_delay
        )
        self.calls: Counter = new_counter()
        self._hedges: Counter = new_counter()
        self._wins: Counter = new_counter()
        self._lock = threading.Lock()
        reset_after_fork(self)
        self._base = (0, 0, 0)

    def _apply_config(self, config: HedgeConfig) -> None:
        delay = config.delay
        self._on = when(config.on)
        self.delay_of = (
            itertools.repeat(min(float(delay), LONGEST_DELAY)).__next__
            if not callable(delay)
            else self._computed_delay
        )
        self.config = config

    def _after_fork_in_child(self) -> None:
        fresh_lock(self._lock)

    def _computed_delay(self) -> float:
        delay = self.config.delay()  # type: ignore[operator]
        if not (is_finite_number(delay) and delay >= 0):
            raise ValueError(
                f"hedge {self.name!r}: delay() returned {delay!r}; it must return "
                f"{DELAY_EXPECTED.split(', or')[0]}"
            )
        return min(float(delay), LONGEST_DELAY)

    def retryable(self, error: BaseException) -> bool:
        """Whether an attempt that raised ``error`` may be hedged rather than raised.

        Cancellation, ``KeyboardInterrupt`` and ``SystemExit`` never are.
        """
        return isinstance(error, Exception) and self._on(error)

    def started(self, hedge: int, error: BaseException | None) -> None:
        """Count and report that extra attempt number ``hedge`` starts."""
        next(self._hedges)
        self.emit(HedgeStarted(self.name, hedge, error))

    def won(self) -> None:
        """Count a call won by an extra attempt."""
        next(self._wins)

    def stats(self) -> HedgeStats:
        with self._lock:
            calls, hedges, wins = self._base
            return HedgeStats(
                calls=read_counter(self.calls) - calls,
                hedges=read_counter(self._hedges) - hedges,
                hedge_wins=read_counter(self._wins) - wins,
            )

    def reset(self) -> None:
        with self._lock:
            self._base = (
                read_counter(self.calls),
                read_counter(self._hedges),
                read_counter(self._wins),
            )

    def _sync_driver(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        return sync_driver(self, fn)

    def _async_driver(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        return async_driver(self, fn)
