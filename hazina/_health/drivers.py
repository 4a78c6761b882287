"""Running one health check within its timeout, sync or async.

Async checks run as tasks of the caller's loop; sync checks run in threads of their own.
A thread cannot be stopped, so a sync check that hangs keeps its thread; the report does
not wait for it (the check is reported as timed out), and later runs *join* that thread's
run instead of starting another, so a check hung for hours costs one thread, not one
per probe. The threads are daemons: a hung check never blocks interpreter exit.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import inspect
import threading
from time import perf_counter
from typing import Any

from .._core.forks import fresh_lock, on_fork_in_child
from .policy import CheckFunction, HealthCheck
from .records import UNHEALTHY, HealthEntry

# Serialises the decision "join the running thread or start one" per process (rare path).
# Re-entrant: a thread that is already done runs its done-callback (which takes this
# lock too) at once, in the thread that adds it.
_start_lock = threading.RLock()
on_fork_in_child(lambda: fresh_lock(_start_lock))


# Checks given up on (timed out) that are still finishing: held so they are not
# garbage-collected mid-run.
abandoned: set[asyncio.Future[Any]] = set()


async def run_check(check: HealthCheck) -> HealthEntry:
    """Run ``check`` once within its timeout, record the outcome and return its entry."""
    loop = asyncio.get_running_loop()
    timeout = check.config.timeout
    started = perf_counter()
    deadline = loop.time() + timeout
    pending = _start(check, loop)
    # While true, `pending` is the bridge to a thread and its result the thread's future.
    threaded = not check.is_async
    try:
        while True:
            done, _ = await asyncio.wait((pending,), timeout=max(0.0, deadline - loop.time()))
            if not done:
                entry = check.entry(
                    UNHEALTHY, perf_counter() - started, description=f"timed out after {timeout:g}s"
                )
                check.record(entry, timed_out=True)
                return entry
            outcome = pending.result() if threaded else pending
            if outcome.cancelled() and outcome is check.leftover:
                # The run joined had not yet seen its cancellation; this one starts anew.
                check.leftover = None
                pending = _start(check, loop)
                continue
            if outcome.cancelled():
                entry = check.entry(
                    UNHEALTHY, perf_counter() - started, description="the check was cancelled"
                )
                break
            error = outcome.exception()
            result = None if error is not None else outcome.result()
            if isinstance(result, Stopped):
                error, result = result.error, None
            try:
                if threaded and error is None and inspect.isawaitable(result):
                    # A sync function that returned an awaitable (e.g. `lambda:
                    # client.ping()` on an asyncio client): await it within what is
                    # left of the timeout.
                    pending = _abandon_on_exit(asyncio.ensure_future(_awaited(result)))
                    threaded = False
                    continue
                duration = perf_counter() - started
                entry = (
                    check.failed(error, duration)
                    if error is not None
                    else check.interpret(result, duration)
                )
            except Exception as odd:  # e.g. a future of another loop; a repr() that raises
                entry = check.failed(odd, perf_counter() - started)
            break
    finally:
        # Timed out, or our caller was cancelled: stop the check (a thread cannot be
        # stopped; it finishes on its own and is joined by later runs meanwhile).
        if not pending.done():
            pending.cancel()
            if check.is_async:
                check.leftover = pending
    check.record(entry, timed_out=False)
    return entry


def _start(check: HealthCheck, loop: asyncio.AbstractEventLoop) -> asyncio.Future[Any]:
    if check.is_async:
        leftover = check.leftover
        if leftover is not None and not leftover.done() and leftover.get_loop() is loop:
            # Still running after its cancellation: join it, as sync checks join their
            # thread, so a check that ignores cancellation runs once, not once a report.
            return leftover
        check.leftover = None
        return _abandon_on_exit(loop.create_task(_call(check.fn)))
    with _start_lock:
        running = check.in_flight
        if running is None or running.done():
            running = _start_thread(check)
            check.in_flight = running
            running.add_done_callback(lambda done: _finished(check, done))
    return _bridge(running, loop)


def _finished(check: HealthCheck, done: concurrent.futures.Future[Any]) -> None:
    # Let go of the outcome (an exception holds its frames) once nobody can join it.
    with _start_lock:
        if check.in_flight is done:
            check.in_flight = None


class Stopped:
    """A check raised ``KeyboardInterrupt`` or ``SystemExit``.

    Raised out of a task, these would stop the event loop in the middle of the report;
    the check's task hands them back as this instead, the check is reported unhealthy,
    and the report's runner re-raises them once every entry is recorded.
    """

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


async def _call(fn: CheckFunction) -> Any:
    return await _awaited(fn())


async def _awaited(awaitable: Any) -> Any:
    try:
        return await awaitable
    except (KeyboardInterrupt, SystemExit) as stop:
        return Stopped(stop)


def _start_thread(check: HealthCheck) -> concurrent.futures.Future[Any]:
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()
    future.set_running_or_notify_cancel()
    # Like asyncio.to_thread: the check sees the caller's context variables.
    context = contextvars.copy_context()
    thread = threading.Thread(
        target=_work,
        args=(future, context, check.fn),
        name=f"hazina-health:{check.name}",
        daemon=True,
    )
    try:
        thread.start()
    except RuntimeError as error:  # "can't start new thread": report it, don't crash
        future.set_exception(error)
    return future


def _work(
    future: concurrent.futures.Future[Any], context: contextvars.Context, fn: CheckFunction
) -> None:
    try:
        result = context.run(fn)
    except BaseException as error:  # a thread has nobody else to hand it to
        future.set_exception(error)
    else:
        future.set_result(result)


def _bridge(
    source: concurrent.futures.Future[Any], loop: asyncio.AbstractEventLoop
) -> asyncio.Future[Any]:
    """An asyncio future whose result is ``source`` once that is done.

    The result is the finished future itself rather than its outcome copied across:
    asyncio futures refuse some exceptions (StopIteration) that a check may raise.
    """
    waiter: asyncio.Future[Any] = loop.create_future()

    def settle() -> None:
        if not waiter.done():  # not given up on
            waiter.set_result(source)

    def on_done(_: concurrent.futures.Future[Any]) -> None:
        # RuntimeError: that loop has closed, so nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle)

    source.add_done_callback(on_done)
    return waiter


def _abandon_on_exit(future: asyncio.Future[Any]) -> asyncio.Future[Any]:
    abandoned.add(future)
    future.add_done_callback(_forget)
    return future


def _forget(future: asyncio.Future[Any]) -> None:
    abandoned.discard(future)
    # Retrieved here so that a check finishing after it was given up on is not
    # logged as "exception was never retrieved".
    if not future.cancelled():
        future.exception()
