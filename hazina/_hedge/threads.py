"""Sync hedging: every attempt runs on a worker thread, and the caller waits for news.

The caller must be free to walk away from a slow attempt, so even the first one runs
on a worker. Workers report each outcome to the call's list and release its ``news``
lock; the caller, the only reader, takes the lock (with a timeout: the delay until
the next hedge) and goes through every outcome it has not seen. Attempts still
running when the call ends finish on their own; their outcomes are dropped.
"""

from __future__ import annotations

from _thread import LockType, allocate_lock
from collections.abc import Callable
from contextvars import copy_context
from time import monotonic
from typing import TYPE_CHECKING, Any, TypeAlias

from .race import FAIL, RAISE, START, WIN, Race
from .workers import Workers

if TYPE_CHECKING:
    from .policy import Hedge

#: One attempt's outcome: its number, and the error it raised or ``None`` and its result.
Outcome: TypeAlias = tuple[int, BaseException | None, Any]

#: Shared by every sync hedge; a worker idle this long (seconds) exits.
WORKERS = Workers("hazina-hedge", idle_for=30.0)


class Attempts:
    """One sync call's attempts as they report back; never shared between calls."""

    __slots__ = ("args", "fn", "kwargs", "news", "outcomes")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]):
        self.fn, self.args, self.kwargs = fn, args, kwargs
        #: Released by a worker after it reports: "an outcome you have not seen".
        self.news: LockType = allocate_lock()
        self.news.acquire()
        self.outcomes: list[Outcome] = []

    def attempt(self, number: int) -> None:
        """Run attempt ``number`` (on a worker thread) and report how it ended."""
        try:
            outcome: Outcome = (number, None, self.fn(*self.args, **self.kwargs))
        except BaseException as error:  # the caller decides; a worker must not die of it
            outcome = (number, error, None)
        self.outcomes.append(outcome)
        try:  # noqa: SIM105 - contextlib.suppress costs a context manager per attempt
            self.news.release()
        except RuntimeError:
            pass  # already released: the caller reads every outcome when it wakes


def race_threads(hedge: Hedge, attempts: Attempts, delay: float, started: float) -> Any:
    """Go on with a call whose first attempt failed, or did not end within ``delay``."""
    race, run = Race(hedge), WORKERS.run
    outcomes, news, seen = attempts.outcomes, attempts.news, 0
    next_hedge_at = started + delay
    while True:
        while seen < len(outcomes):
            number, error, result = outcomes[seen]
            seen += 1
            verdict = race.finished(number, error)
            if verdict is WIN:
                return result
            if verdict is RAISE:
                raise error  # type: ignore[misc]  # RAISE comes with an error, never None
            if verdict is FAIL:
                raise race.failure()
            if verdict is START:
                run(copy_context(), attempts.attempt, race.next_hedge(error))
                next_hedge_at = monotonic() + delay
        if not race.can_hedge():
            news.acquire()
            continue
        wait = next_hedge_at - monotonic()
        if wait <= 0 or not news.acquire(True, wait):
            run(copy_context(), attempts.attempt, race.next_hedge(None))
            next_hedge_at = monotonic() + delay
