"""The worker threads a sync ``@timeout`` runs its calls in.

A call never waits for a worker: it takes an idle one or starts a new one, so the pool
grows with the number of calls running at once (abandoned ones included) and shrinks
again as workers find nothing to do for :data:`IDLE_SECONDS`. Hand-offs go through
plain locks used as one-shot latches (``acquire`` with a timeout is the cheapest
blocking wait CPython has), never through a queue or a ``Future``.
"""

from __future__ import annotations

import contextvars
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any

#: How long a worker waits for a call before it exits.
IDLE_SECONDS = 2.0


class Job:
    """One call handed to a worker, and its outcome.

    ``claim`` holds one item: whoever pops it first decides the job's fate. The worker
    pops it when the call has finished (the caller then gets the outcome); a caller
    whose deadline passed pops it to abandon the call (the worker then tells
    ``on_abandoned_end`` when the call finally ends).
    """

    __slots__ = (
        "args",
        "claim",
        "context",
        "done",
        "error",
        "fn",
        "kwargs",
        "on_abandoned_end",
        "result",
    )

    def __init__(
        self,
        context: contextvars.Context,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        on_abandoned_end: Callable[[], None],
    ) -> None:
        self.context: contextvars.Context = context
        self.fn: Callable[..., Any] = fn
        self.args: tuple[Any, ...] = args
        self.kwargs: dict[str, Any] = kwargs
        self.on_abandoned_end: Callable[[], None] = on_abandoned_end
        self.result: Any = None
        self.error: BaseException | None = None
        self.claim: list[None] = [None]
        # Released by the worker once the outcome is in; the caller waits on it.
        self.done: threading.Lock = threading.Lock()
        self.done.acquire()

    def outcome(self) -> Any:
        """The call's result, or raise its error."""
        error = self.error
        if error is not None:
            self.error = None  # no cycle through the traceback's frames
            raise error
        return self.result


class _Worker:
    __slots__ = ("job", "wake")

    def __init__(self) -> None:
        self.job: Job | None = None
        self.wake: threading.Lock = threading.Lock()
        self.wake.acquire()


class WorkerPool:
    """Threads that run jobs, started on demand, exiting after :data:`IDLE_SECONDS` idle."""

    def __init__(self, idle_seconds: float = IDLE_SECONDS) -> None:
        self.idle_seconds: float = idle_seconds
        self._forget_workers()
        _POOLS.add(self)

    def _forget_workers(self) -> None:
        # Most recently used last: pop() takes a warm one, the cold ones idle out.
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        self._threads = 0

    @property
    def threads(self) -> int:
        """Worker threads alive now, busy or idle."""
        return self._threads

    def submit(self, job: Job) -> None:
        """Run ``job`` on an idle worker, or on a new one; never waits."""
        idle = self._idle
        with self._lock:
            if idle:
                # Taken, handed its job and woken with no call before the wake-up: an
                # exception landing here (a signal handler's) never leaves a worker taken
                # without its job, parked for good.
                worker = idle[-1]
                del idle[-1]
                worker.job = job
                worker.wake.release()
                return
        worker = _Worker()
        worker.job = job
        worker.wake.release()  # its first wait ends at once, with the job
        threading.Thread(
            target=self._work, args=(worker,), name="hazina-timeout-worker", daemon=True
        ).start()

    def _work(self, worker: _Worker) -> None:
        idle, wake, lock = self._idle, worker.wake, self._lock
        # Counted by the thread itself: a start cut short by an exception may or may not
        # have started it.
        with lock:
            self._threads += 1
        try:
            while True:
                if not wake.acquire(True, self.idle_seconds):
                    with lock:
                        if worker.job is None:
                            idle.remove(worker)
                            return
                    # Handed a job as its wait ran out: it was woken in the same breath.
                    wake.acquire()
                job = worker.job
                worker.job = None
                assert job is not None
                try:
                    job.result = job.context.run(job.fn, *job.args, **job.kwargs)
                except BaseException as error:
                    job.error = error
                job.fn = job.args = job.kwargs = job.context = None  # type: ignore[assignment]
                try:
                    job.claim.pop()
                except IndexError:
                    # The caller walked away at its deadline; nobody reads this outcome.
                    job.result = job.error = None
                    with lock:
                        idle.append(worker)
                    job.on_abandoned_end()
                else:
                    # Back in the pool before the caller wakes, so its next call reuses us.
                    with lock:
                        idle.append(worker)
                    job.done.release()
        finally:
            with lock:
                self._threads -= 1


_POOLS: weakref.WeakSet[WorkerPool] = weakref.WeakSet()


def _forget_workers_after_fork() -> None:
    # A forked child has none of its parent's threads: handing a call to one of them
    # would leave the caller waiting for its deadline, and count a call abandoned that
    # never ran.
    for pool in list(_POOLS):
        pool._forget_workers()


os.register_at_fork(after_in_child=_forget_workers_after_fork)

#: The pool every sync timeout shares.
WORKERS = WorkerPool()
