"""Helpers for the tests that interrupt policies: signal storms and forks under load.

A signal storm raises :class:`Interrupted` from a ``SIGALRM`` handler every few
microseconds while the main thread calls a policy, so the exception lands between
arbitrary bytecodes of the call, as Ctrl-C or a ``SIGALRM``-based timeout would.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

#: How many exceptions a storm must land in the policy's code, at least.
STORM_HITS = 3000


class Interrupted(Exception):
    """What the storm's signal handler raises."""


def signal_storm(call: Callable[[int], Any], hits: int = STORM_HITS, seconds: float = 60.0) -> int:
    """Call ``call(i)`` for i = 0, 1, ... while a timer raises :class:`Interrupted` at
    random points, until ``hits`` calls were interrupted; returns how many calls ran."""

    armed = [False]  # raise only inside the calls, never in this loop's own code

    def handler(signum: int, frame: Any) -> None:
        if armed[0]:
            armed[0] = False
            raise Interrupted

    def unraisable(report: Any) -> None:
        # Landing in a finaliser or a weakref callback, the exception is printed and
        # dropped by the interpreter, not raised: expected here, not a failure.
        if not isinstance(report.exc_value, Interrupted):
            previous_hook(report)

    previous_hook = sys.unraisablehook
    sys.unraisablehook = unraisable
    previous = signal.signal(signal.SIGALRM, handler)
    interrupted = calls = 0
    deadline = time.monotonic() + seconds
    signal.setitimer(signal.ITIMER_REAL, 20e-6, 20e-6)
    try:
        while interrupted < hits and time.monotonic() < deadline:
            try:
                armed[0] = True
                call(calls)
                armed[0] = False
            except Interrupted:
                interrupted += 1
            calls += 1
    finally:
        armed[0] = False
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        settle_last_alarm()
        signal.signal(signal.SIGALRM, previous)
        sys.unraisablehook = previous_hook
    assert interrupted >= hits, f"only {interrupted} interrupts landed in {calls} calls"
    return calls


def settle_last_alarm() -> None:
    """Let a SIGALRM still on its way run the storm's own (disarmed) handler.

    The timer signals the process, not a thread: whichever thread takes the signal runs
    CPython's C-level handler, which only sets a flag, and the main thread runs the
    Python handler at its next call. Met by the restored handler instead (the default
    one), it is reported as "Signal 14 ignored due to race condition", an unraisable
    error that fails the test. A signal stays pending for the process until a thread
    takes it, so: wait until none is, give that thread a moment, then make a call.
    """
    deadline = time.monotonic() + 1.0
    while signal.SIGALRM in signal.sigpending() and time.monotonic() < deadline:
        time.sleep(0.001)
    time.sleep(0.002)
    handled_now()


def handled_now() -> None:
    """Nothing: calling it lets signal handlers run that are due."""


def lock_is_free(lock: Any) -> bool:
    """Whether nobody holds ``lock`` (a Lock or an RLock), without waiting."""
    if not lock.acquire(blocking=False):
        return False
    lock.release()
    return True


class Hammering:
    """What :func:`hammered`'s threads did: how many calls of ``work()`` returned."""

    def __init__(self) -> None:
        self.calls = 0
        self.errors: list[BaseException] = []


@contextmanager
def hammered(work: Callable[[], Any], threads: int = 4) -> Iterator[Hammering]:
    """Run ``work()`` in a loop in ``threads`` threads for the duration of the block.

    The first error a thread meets stops that thread and is raised when the block ends.
    """
    stop = threading.Event()
    hammering = Hammering()
    counts: list[int] = []

    def loop() -> None:
        made = 0
        try:
            while not stop.is_set():
                work()
                made += 1
        except BaseException as error:
            hammering.errors.append(error)
        counts.append(made)

    workers = [threading.Thread(target=loop, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    try:
        yield hammering
    finally:
        stop.set()
        for worker in workers:
            worker.join()
        hammering.calls = sum(counts)
    if hammering.errors:
        raise hammering.errors[0]


def fork_children(use: Callable[[], None], children: int = 40, timeout: float = 10.0) -> list[str]:
    """Fork ``children`` times; each child calls ``use()`` and exits 0 (1 if it raised).

    Returns what went wrong: children that hung (killed after ``timeout`` seconds in
    all) or exited with another status; an empty list when every child was fine.
    """
    pids = []
    for _ in range(children):
        pid = os.fork()
        if pid == 0:  # the child: never return into pytest
            try:
                use()
            except BaseException:
                os._exit(1)
            os._exit(0)
        pids.append(pid)
    problems = []
    deadline = time.monotonic() + timeout
    for pid in pids:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                if os.waitstatus_to_exitcode(status) != 0:
                    problems.append(f"child {pid} exited with {os.waitstatus_to_exitcode(status)}")
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                problems.append(f"child {pid} hung")
                break
            time.sleep(0.01)
    return problems


def output_of_forked_child(produce: Callable[[], str]) -> str:
    """Fork once; the child runs ``produce()`` and sends its text back through a pipe.

    Forking a process that has threads is the point of these tests, so Python 3.12's
    warning about it is silenced.
    """
    read, write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        try:
            os.write(write, produce().encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as child:
        output = child.read()
    os.waitpid(pid, 0)
    return output
