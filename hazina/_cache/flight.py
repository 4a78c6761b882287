"""Single flight: one load per key at a time, its outcome shared with everyone waiting.

A :class:`Flight` is created by the caller that found nothing (the leader) and waited
on by callers that miss the same key meanwhile: threads block on a lock the leader
holds until it settles, tasks await a future of their own. Each task has its own
future, so cancelling one waiter cancels nothing else; the leader's load goes on.

The owning policy registers waiters under its lock and settles a flight only after
unregistering it under that lock, so no waiter joins a flight that has already woken
its waiters. If the leader does not finish (cancelled, interrupted), the flight is
abandoned: its waiters wake up and look again, and the first of them leads a new load.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from types import TracebackType
from typing import Any

#: What became of a flight's load.
PENDING, VALUE, ERROR, ABANDONED = "pending", "value", "error", "abandoned"


class Flight:
    """One in-flight load of one key."""

    __slots__ = (
        "_async_waiters",
        "_done",
        "counted",
        "epoch",
        "error",
        "invalidations",
        "outcome",
        "task",
        "thread",
        "traceback",
        "value",
    )

    def __init__(
        self, task: asyncio.Task[Any] | None, epoch: int = 0, invalidations: int = 0
    ) -> None:
        #: The leader: its thread, and its task if it runs on an event loop.
        self.thread = threading.get_ident()
        self.task = task
        #: The owning policy's stats period the load was counted in.
        self.epoch = epoch
        #: The owning policy's count of invalidations when the load began.
        self.invalidations = invalidations
        self.outcome = PENDING
        #: Whether its failure was counted in the owner's stats.
        self.counted = False
        self.value: Any = None
        self.error: BaseException | None = None
        self.traceback: TracebackType | None = None
        # Held until the flight settles; a waiting thread acquires and releases it.
        self._done = threading.Lock()
        self._done.acquire()
        self._async_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def joinable(self, task: asyncio.Task[Any] | None) -> bool:
        """Whether the calling thread (and ``task``, if async) may wait for this flight.

        Waiting is refused where it could never end: a thread waiting for a load that
        runs on that same thread (a recursive call, or sync code called from the event
        loop the leader runs on), or a task waiting for itself.
        """
        if self.thread != threading.get_ident():
            return True
        return task is not None and self.task is not None and self.task is not task

    def wait(self) -> None:
        """Block the calling thread until the flight settles."""
        # `with`: an exception landing between taking and giving back the lock would
        # otherwise keep every other waiter of this flight waiting for ever.
        with self._done:
            pass

    def add_async_waiter(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
        """A future, on ``loop``, that completes when the flight settles."""
        future: asyncio.Future[None] = loop.create_future()
        self._async_waiters.append((loop, future))
        return future

    def settle(self, outcome: str, value: Any = None, error: BaseException | None = None) -> None:
        """Record the outcome and wake every waiter (once no new waiter can join).

        Settling a settled flight only wakes its waiters again (an interrupted leader's
        clean-up may come after, or in the middle of, its flight settling).
        """
        if self.outcome == PENDING:
            self.value = value
            self.error = error
            self.traceback = None if error is None else error.__traceback__
            # No call between the outcome and the release: waiters never see one
            # without the other.
            self.outcome = outcome
            self._done.release()
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        for loop, future in self._async_waiters:
            if loop is running:
                _wake(future)
            else:
                # A closed loop raises RuntimeError: nobody is left there to wake.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_wake, future)

    def reraise(self) -> Any:
        """Return the leader's value, or raise its error with the leader's traceback."""
        if self.outcome == ERROR:
            assert self.error is not None
            # Each waiter raises from the leader's traceback, not from the previous
            # waiter's, so tracebacks do not grow with the number of waiters.
            raise self.error.with_traceback(self.traceback)
        return self.value


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():  # a cancelled waiter has gone
        future.set_result(None)
