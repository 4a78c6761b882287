"""Helpers for testing code that uses hazina."""

from __future__ import annotations

from types import TracebackType

from ._core.clock import FakeClock
from ._core.switches import WAITS

__all__ = ["FakeClock", "instant_waits"]


class instant_waits:
    """Make every retry wait instant (or, with ``False``, real again).

    Under it, a bulkhead caller that finds no free slot is refused at once instead of
    queueing. Timeout deadlines are real time and never skipped.

    Called, it switches at once and stays switched; used as a context manager, it
    restores the previous setting on exit::

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
