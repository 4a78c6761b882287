"""Where policies read the time and wait.

Every policy takes its time from a clock object rather than from :mod:`time`, so tests
can move time instead of sleeping. The default clock looks ``time.monotonic`` up on
every read, which is what lets freezegun move it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, runtime_checkable

from .errors import safe_repr
from .validation import is_finite_number


@runtime_checkable
class Clock(Protocol):
    """The time source and the sleeper a policy uses."""

    def now(self) -> float:
        """Seconds on a monotonic scale; only differences mean anything."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds``."""
        ...

    async def asleep(self, seconds: float) -> None:
        """Suspend the calling task for ``seconds``."""
        ...


class SystemClock:
    """The real clock: ``time.monotonic``, ``time.sleep`` and ``asyncio.sleep``."""

    __slots__ = ()

    def now(self) -> float:
        # Looked up at call time (not bound once) so that freezegun's patch is seen.
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"


class FakeClock:
    """A clock for tests: time stands still until moved, and sleeping moves it.

    Args:
        start: The reading at creation.
    """

    __slots__ = ("_now", "sleeps")

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``."""
        if seconds < 0:
            raise ValueError(f"time only moves forward, got {seconds!r}")
        self._now += seconds

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        self.sleeps.append(seconds)

    async def asleep(self, seconds: float) -> None:
        self.advance(seconds)
        self.sleeps.append(seconds)
        # Still a real suspension point, so other tasks get to run as they would.
        await asyncio.sleep(0)

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now!r})"


SYSTEM_CLOCK = SystemClock()


def checked_clock(clock: object) -> Clock:
    """``clock``, if it can serve as a :class:`Clock`; else a ``TypeError`` saying why."""
    missing = [
        method
        for method in ("now", "sleep", "asleep")
        if not callable(getattr(clock, method, None))
    ]
    if missing:
        raise TypeError(
            f"Registry(clock=...) needs an object with now(), sleep() and asleep() "
            f"methods; {safe_repr(clock)} has no {', '.join(m + '()' for m in missing)}"
        )
    reading = clock.now()  # type: ignore[attr-defined]
    if not is_finite_number(reading):
        raise TypeError(
            f"Registry(clock=...): {safe_repr(clock)}.now() must return a finite number of "
            f"seconds, got {safe_repr(reading)}"
        )
    return clock  # type: ignore[return-value]


def is_system_clock(clock: Clock) -> bool:
    """Whether ``clock`` is the real one.

    Hot paths then call ``time.monotonic`` through a module global of their own
    (``from time import monotonic``) instead of ``clock.now()``, saving a Python frame
    per read; freezegun still moves it, since it patches module globals that hold the
    real function.
    """
    return type(clock) is SystemClock
