"""The first delay of every async hedged call, kept by one timer per event loop.

A ``loop.call_later`` per call would cost a ``TimerHandle`` and a push onto the loop's
heap, whose entries compare in Python, only to be cancelled a moment later when the
call returns well within its delay, as almost every call does. Instead each loop gets
one :class:`Timers`: a call pushes a list ``[deadline, seq, due, ...]`` onto a heap
ordered by plain floats and ints (compared in C, never past the unique ``seq``) and,
when it ends, blanks the entry by cutting it back to ``[deadline, seq]``, which also
lets go of the call's arguments at once. The one timer is armed for the earliest deadline
still live; blanked entries are dropped whenever they reach the top, so they cost
neither a wake-up nor memory for long.
"""

from __future__ import annotations

import itertools
import weakref
from asyncio import AbstractEventLoop, TimerHandle
from contextvars import Context
from heapq import heappop, heappush
from typing import Any

#: A pending first delay: ``[deadline, seq, due, ...]``; at the deadline ``due(entry)``
#: is called, unless the entry was blanked (cut to ``[deadline, seq]``) first. The rest
#: is the caller's.
Entry = list[Any]

#: The length of a blanked entry.
BLANK = 2

#: A loop's timer may fire this early (the loop's clock resolution); not worth a re-arm.
EARLY = 1e-6


class Timers:
    """One event loop's pending first delays, on one loop timer.

    It keeps only weak references to its loop and the loop's timer, so that a loop
    that is done with is freed with everything it held.
    """

    __slots__ = ("_armed_for", "_context", "_handle", "_heap", "_loop", "_seq")

    def __init__(self, loop: AbstractEventLoop) -> None:
        self._loop = weakref.ref(loop)
        self._heap: list[Entry] = []
        self._seq = itertools.count()
        self._handle: weakref.ref[TimerHandle] | None = None
        self._armed_for = 0.0
        # The timer runs in an empty context of its own; each race re-enters its own.
        self._context = Context()

    def add(self, loop: AbstractEventLoop, delay: float, entry: Entry) -> None:
        """Call ``entry[2](entry)`` in ``delay`` seconds, unless it is blanked first.

        Fills in the entry's deadline and sequence number.
        """
        deadline = entry[0] = loop.time() + delay
        entry[1] = next(self._seq)
        heap = self._heap
        while heap and len(heap[0]) == BLANK:
            heappop(heap)
        heappush(heap, entry)
        if self._handle is None or deadline < self._armed_for:
            self._arm(loop, deadline)

    def _arm(self, loop: AbstractEventLoop, deadline: float) -> None:
        armed = None if self._handle is None else self._handle()
        if armed is not None:
            armed.cancel()
        handle = loop.call_at(deadline, self._fire, context=self._context)
        self._handle = weakref.ref(handle)
        self._armed_for = deadline

    def _fire(self) -> None:
        self._handle = None
        loop = self._loop()
        if loop is None:  # pragma: no cover - a loop running this callback is alive
            return
        heap = self._heap
        now = loop.time() + EARLY
        try:
            while heap and (len(heap[0]) == BLANK or heap[0][0] <= now):
                entry = heappop(heap)
                if len(entry) > BLANK:
                    entry[2](entry)
        finally:
            # Even after a failing call (its error goes to the loop's handler), the
            # others keep their timer.
            if heap and self._handle is None:
                self._arm(loop, heap[0][0])


_timers: weakref.WeakKeyDictionary[AbstractEventLoop, Timers] = weakref.WeakKeyDictionary()
# The last loop asked for and its timers, as one tuple so that threads running loops
# of their own never see one loop paired with another's timers; the loop held weakly.
_last: tuple[weakref.ref[AbstractEventLoop] | None, Timers | None] = (None, None)


def timers_for(loop: AbstractEventLoop) -> Timers:
    """The timers of ``loop`` (made on first use)."""
    global _last
    last_loop, timers = _last
    if last_loop is not None and last_loop() is loop:
        return timers  # type: ignore[return-value]
    timers = _timers.get(loop)
    if timers is None:
        timers = _timers[loop] = Timers(loop)
    _last = (weakref.ref(loop), timers)
    return timers
