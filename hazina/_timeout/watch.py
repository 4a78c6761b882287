"""One timer per event loop for all of a timeout's calls, instead of one timer per call.

Every call of one timeout policy gets the same number of seconds, so deadlines come due
in the order the calls started: a FIFO queue of calls in flight, and a single loop
timer armed at the head's deadline, replace the ``TimerHandle`` (and the heap push and
the cancel) that ``asyncio.timeout`` pays per call. A call that ends just marks itself
finished and drops the finished calls at the head of the queue; the timer, when it
fires, cancels the calls past their deadline and re-arms itself for the next one (so
after the last call a timer stays armed until that call's deadline, then lapses).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections import deque
from time import monotonic

from .._core.deadline import Deadline
from .._core.forks import fresh_lock, reset_after_fork


class TimedCall(Deadline):
    """A deadline, and the task to cancel when it passes (``None`` once the call ended)."""

    __slots__ = ("task",)

    def __init__(self, at: float, task: asyncio.Task[object] | None) -> None:
        super().__init__(at)
        self.task: asyncio.Task[object] | None = task


class Watch:
    """The calls in flight on one event loop, and the one timer that watches them.

    Touched only from the loop's own thread.
    """

    __slots__ = ("__weakref__", "calls", "loop", "timer")

    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self.loop: asyncio.AbstractEventLoop | None = loop
        self.calls: deque[TimedCall] = deque()
        self.timer: asyncio.TimerHandle | None = None

    def arm(self, at: float) -> None:
        """Fire :meth:`sweep` at ``at`` (on the ``monotonic`` scale)."""
        loop = self.loop
        assert loop is not None
        self.timer = loop.call_at(loop.time() + (at - monotonic()), self.sweep)

    def sweep(self) -> None:
        """Cancel the calls whose deadline has passed; re-arm for the next one."""
        self.timer = None
        calls, now = self.calls, monotonic()
        while calls:
            head = calls[0]
            task = head.task
            if task is not None and head.at > now:
                self.arm(head.at)
                return
            calls.popleft()
            if task is not None:
                head.task = None
                head.expired = True
                task.cancel()


class Watches:
    """A timeout's :class:`Watch` per event loop; the last one used is read first."""

    __slots__ = ("__weakref__", "_by_loop", "_lock", "last")

    def __init__(self) -> None:
        # Weak values: a watch lives while a call in flight, its armed timer or `last`
        # holds it, and then lets its loop go (a watch refers to its loop, so weak keys
        # would keep every loop ever used alive).
        self._by_loop: weakref.WeakValueDictionary[asyncio.AbstractEventLoop, Watch] = (
            weakref.WeakValueDictionary()
        )
        self._lock = threading.Lock()
        # A watch of no loop: the first call of each thread looks its loop's up.
        self.last: Watch = Watch(None)
        reset_after_fork(self)

    def _after_fork_in_child(self) -> None:
        # Another thread of the parent may have held it; none of them runs here.
        fresh_lock(self._lock)

    def of(self, loop: asyncio.AbstractEventLoop) -> Watch:
        """The watch of ``loop`` (made if new), which becomes the last one used."""
        with self._lock:
            watch = self._by_loop.get(loop)
            if watch is None:
                watch = self._by_loop[loop] = Watch(loop)
        self.last = watch
        return watch
