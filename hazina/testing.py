"""Helpers for testing code that uses hazina.

The pytest fixtures (``hazina_registry``, ``hazina_clock``, ``hazina_events``,
``hazina_reset``) come with the package as a pytest plugin; nothing to import.
"""

from __future__ import annotations

from types import TracebackType

from ._core.clock import FakeClock
from ._core.switches import DISABLED, WAITS

__all__ = ["FakeClock", "disabled", "instant_waits"]


class instant_waits:
    """Make every hazina wait instant (or, with ``False``, real again).

    Retry waits and rate-limiter waits (``wait=True``) are skipped; a skipped wait
    still counts in the stats as if it had been waited. Under it, a bulkhead caller that
    finds no free slot is refused at once instead of queueing. Timeout deadlines are
    real time and never skipped. Called, it switches at once and stays switched; used
    as a context manager, it restores the previous setting on exit::

        hazina.testing.instant_waits()          # for the rest of the process
        with hazina.testing.instant_waits():    # for this block only
            ...

    Args:
        on: ``True`` for instant waits, ``False`` for real ones.
    """

    __slots__ = ("_previous",)

    def __init__(self, on: bool = True) -> None:
        self._previous = WAITS.instant
        WAITS.instant = on

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        WAITS.instant = self._previous


class disabled:
    """Make every policy pass calls straight through (or, with ``False``, work again).

    Breakers never refuse or open, limiters always admit at once, caches call the
    function every time, retries try once (the first attempt's error or result
    stands). Policies still count what they see. Called, it switches at once and stays
    switched; used as a context manager, it restores the previous setting on exit::

        hazina.testing.disabled()               # for the rest of the process
        with hazina.testing.disabled():         # for this block only
            ...

    Args:
        on: ``True`` to pass calls through, ``False`` for policies that work.
    """

    __slots__ = ("_previous",)

    def __init__(self, on: bool = True) -> None:
        self._previous = DISABLED.on
        DISABLED.set(on)

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        DISABLED.set(self._previous)
