"""The threads sync hedged attempts run in: a call never waits for one.

An idle worker parks on a lock of its own; handing it a job takes it from the idle
list, writes the job and releases that lock, all under the pool's lock with no call
before the release, so an exception from a signal handler can never leave a worker
taken without its job. When no worker is idle a new thread starts, so the pool grows
with the number of attempts in flight; a worker idle for :attr:`Workers.idle_for`
seconds exits, unless (looking under the pool's lock) it was handed a job meanwhile.
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
        self._lock = threading.Lock()
        # A forked child has none of its parent's threads: a job handed to one of their
        # mailboxes would never run, and its call would wait for ever.
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._forget_workers)

    def _forget_workers(self) -> None:
        self._idle.clear()
        self._lock._at_fork_reinit()  # type: ignore[attr-defined]

    def run(self, context: Context, function: Callable[[Any], object], argument: Any) -> None:
        """Run ``function(argument)`` in ``context`` on a worker thread, now.

        ``function`` must not raise: whatever it does with an error is its own affair.
        """
        idle = self._idle
        with self._lock:
            if idle:
                # Taken, handed its job and woken with no call before the wake-up: an
                # exception landing here (a signal handler's) never leaves a worker taken
                # without its job, parked for good.
                worker = idle[-1]
                del idle[-1]
                worker.job = (context, function, argument)
                worker.wake.release()
                return
        threading.Thread(
            target=self._serve,
            args=(Worker(), (context, function, argument)),
            name=self.name,
            daemon=True,
        ).start()

    def idle(self) -> int:
        """How many workers are parked, waiting for a job."""
        return len(self._idle)

    def _serve(self, worker: Worker, job: Job | None) -> None:
        idle, wake, lock = self._idle, worker.wake, self._lock
        while job is not None:
            context, function, argument = job
            # Dropped before parking, so an idle worker keeps no call's arguments alive.
            job = None
            context.run(function, argument)
            del context, function, argument
            with lock:
                idle.append(worker)
            if not wake.acquire(True, self.idle_for):
                with lock:
                    if worker.job is None:
                        idle.remove(worker)
                        return
                # Handed a job as its wait ran out: it was woken in the same breath.
                wake.acquire()
            job, worker.job = worker.job, None
