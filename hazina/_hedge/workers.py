"""The threads sync hedged attempts run in: a call never waits for one.

An idle worker parks on a lock of its own; handing it a job is a list pop, an
attribute write and a lock release. When no worker is idle a new thread starts, so
the pool grows with the number of attempts in flight; a worker idle for
:attr:`Workers.idle_for` seconds exits. No lock guards the idle list: ``pop``,
``append`` and ``remove`` on a list are atomic, and a worker that timed out but
was taken before it could remove itself simply waits for the job it was handed.
"""

from __future__ import annotations

import os
import threading
from _thread import LockType, allocate_lock
from collections.abc import Callable
from contextvars import Context
from typing import Any, TypeAlias

#: A job: run ``function(argument)`` in ``context``.
Job: TypeAlias = tuple[Context, Callable[[Any], object], Any]


class Worker:
    """One worker thread's mailbox: a job, and the lock it parks on while it has none."""

    __slots__ = ("job", "wake")

    def __init__(self) -> None:
        self.job: Job | None = None
        self.wake: LockType = allocate_lock()
        self.wake.acquire()


class Workers:
    """A pool of daemon threads that grows on demand and shrinks when idle.

    Args:
        name: The threads' name, as shown in thread dumps.
        idle_for: Seconds an idle worker waits for a job before it exits.
    """

    def __init__(self, name: str, idle_for: float) -> None:
        self.name = name
        self.idle_for = idle_for
        self._idle: list[Worker] = []
        # A forked child has none of its parent's threads: a job handed to one of their
        # mailboxes would never run, and its call would wait for ever.
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._idle.clear)

    def run(self, context: Context, function: Callable[[Any], object], argument: Any) -> None:
        """Run ``function(argument)`` in ``context`` on a worker thread, now.

        ``function`` must not raise: whatever it does with an error is its own affair.
        """
        try:
            worker = self._idle.pop()
        except IndexError:
            worker = Worker()
            threading.Thread(
                target=self._serve,
                args=(worker, (context, function, argument)),
                name=self.name,
                daemon=True,
            ).start()
            return
        worker.job = (context, function, argument)
        worker.wake.release()

    def idle(self) -> int:
        """How many workers are parked, waiting for a job."""
        return len(self._idle)

    def _serve(self, worker: Worker, job: Job | None) -> None:
        idle, wake = self._idle, worker.wake
        while job is not None:
            context, function, argument = job
            # Dropped before parking, so an idle worker keeps no call's arguments alive.
            job = None
            context.run(function, argument)
            del context, function, argument
            idle.append(worker)
            if not wake.acquire(True, self.idle_for):
                try:
                    idle.remove(worker)
                except ValueError:
                    wake.acquire()  # taken in the meantime: its job is on the way
                else:
                    return
            job, worker.job = worker.job, None
