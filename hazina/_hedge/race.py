"""One hedged call's decisions, without I/O: the sync and async drivers both follow them.

A driver tells the race when the delay has passed (:meth:`Race.next_hedge`) and how
each attempt ended (:meth:`Race.finished`); the race answers what to do next. Attempt
0 is the first; attempt ``n`` is hedge number ``n``.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .policy import Hedge


class Verdict(enum.Enum):
    """What a driver does after an attempt ended."""

    #: The attempt succeeded: its result is the call's; the others are losers.
    WIN = enum.auto()
    #: The attempt raised an error outside ``on``: the call raises it at once.
    RAISE = enum.auto()
    #: The attempt failed, and a hedge is left: start it now.
    START = enum.auto()
    #: The attempt failed; others are still running: wait for them.
    WAIT = enum.auto()
    #: Every attempt failed, or ``on`` raised: raise :meth:`Race.failure`.
    FAIL = enum.auto()


WIN, RAISE, START, WAIT, FAIL = Verdict


class Race:
    """The state of one hedged call's attempts; never shared between calls."""

    __slots__ = ("_broken", "_errors", "_hedge", "_running", "decided", "started")

    def __init__(self, hedge: Hedge) -> None:
        self._hedge = hedge
        #: Attempts started so far, the first included.
        self.started = 1
        self._running = 1
        #: Whether the call's outcome is known (later outcomes are losers' and ignored).
        self.decided = False
        self._errors: list[BaseException] = []
        self._broken: BaseException | None = None

    def can_hedge(self) -> bool:
        """Whether another attempt may still start."""
        return not self.decided and self.started <= self._hedge.config.max_hedges

    def next_hedge(self, error: BaseException | None) -> int:
        """Count and report a new attempt (after ``error``, or after the delay); its number."""
        number = self.started
        self.started += 1
        self._running += 1
        self._hedge.started(number, error)
        return number

    def finished(self, attempt: int, error: BaseException | None) -> Verdict:
        """Attempt ``attempt`` returned (``error`` is ``None``) or raised ``error``."""
        self._running -= 1
        if error is None:
            self.decided = True
            if attempt:
                self._hedge.won()
            return WIN
        try:
            retryable = self._hedge.retryable(error)
        except Exception as broken:
            # A raising `on` decides the call as an error outside it would, with its own
            # error (left unhandled in a hedge task's callback, it would go to the event
            # loop's handler, and the attempts still running would outlive the call).
            broken.__context__ = error
            self.decided = True
            self._broken = broken
            return FAIL
        if not retryable:
            self.decided = True
            return RAISE
        # The first attempt's error leads: it is the one raised if all fail.
        self._errors.insert(len(self._errors) if attempt else 0, error)
        if self.can_hedge():
            return START
        if self._running:
            return WAIT
        self.decided = True
        return FAIL

    def failure(self) -> BaseException:
        """The first attempt's error, with a note naming what the others raised; or the
        error ``on`` raised."""
        if self._broken is not None:
            return self._broken
        first, *others = self._errors
        told = "; ".join(repr(error) for error in others)
        first.add_note(
            f"hazina: hedge {self._hedge.name!r}: all {len(self._errors)} attempts failed; "
            f"this is the first attempt's error, the others raised: {told}"
        )
        return first
