"""The timeout's drivers: a task cancelled at its deadline, or a thread walked away from.

Async: the task is cancelled at the deadline (by the policy's one timer per loop, see
:mod:`.watch`), and the cancellation becomes ``TimeoutExceeded``, told apart from any
other cancellation of the task by ``Task.uncancel`` as ``asyncio.timeout`` does. Sync:
the call runs in a worker thread (see :mod:`.workers`) and the caller waits on a latch
until the deadline. Either way the deadline goes into the context variable that nested
waits honour.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from time import monotonic
from typing import TYPE_CHECKING, Any

from .._core.deadline import DEADLINE, Deadline
from .._core.switches import DISABLED
from .watch import TimedCall
from .workers import Job

if TYPE_CHECKING:
    from .policy import Timeout


def sync_driver(timeout: Timeout, fn: Callable[..., Any]) -> Callable[..., Any]:
    """A plain function that runs ``fn`` in a worker and waits at most ``seconds``."""
    seconds, max_abandoned = timeout.seconds, timeout.config.max_abandoned
    calls, submit, overran = timeout.calls, timeout.pool.submit, timeout.overran
    ended, refuse = timeout.abandoned_call_ended, timeout.refuse
    get_deadline, copy_context = DEADLINE.get, contextvars.copy_context
    set_deadline = DEADLINE.set

    def call_with_timeout(*args: Any, **kwargs: Any) -> Any:
        next(calls)
        if DISABLED.on:  # hazina.testing.disabled(): no worker, no deadline
            return fn(*args, **kwargs)
        if timeout.running_abandoned >= max_abandoned:
            raise refuse()
        own = Deadline(monotonic() + seconds)
        outer = get_deadline()
        context = copy_context()
        context.run(set_deadline, own if outer is None or own.at < outer.at else outer)
        job = Job(context, fn, args, kwargs, ended)
        submit(job)
        try:
            finished = job.done.acquire(True, seconds)
        except BaseException:
            # Interrupted while waiting (KeyboardInterrupt): the call is left to run.
            overran(job, own, interrupted=True)
            raise
        if finished:
            return job.outcome()
        return overran(job, own)

    return call_with_timeout


def async_driver(
    timeout: Timeout, fn: Callable[..., Awaitable[Any]]
) -> Callable[..., Awaitable[Any]]:
    """An ``async def`` function that awaits ``fn`` and cancels it at the deadline."""
    seconds, calls, timed_out = timeout.seconds, timeout.calls, timeout.timed_out
    watches = timeout.watches
    get_deadline, set_deadline, reset_deadline = DEADLINE.get, DEADLINE.set, DEADLINE.reset
    get_loop, current_task = asyncio.get_running_loop, asyncio.current_task

    async def call_with_timeout(*args: Any, **kwargs: Any) -> Any:
        next(calls)
        if DISABLED.on:  # hazina.testing.disabled(): no deadline
            return await fn(*args, **kwargs)
        task = current_task()
        assert task is not None, "hazina timeouts need to run inside an asyncio task"
        loop = get_loop()
        watch = watches.last
        if watch.loop is not loop:
            watch = watches.of(loop)
        own = TimedCall(monotonic() + seconds, task)
        watch.calls.append(own)
        if watch.timer is None:
            # Any timer already armed is due no later than this call's deadline.
            watch.arm(own.at)
        outer = get_deadline()
        token = set_deadline(own if outer is None or own.at < outer.at else outer)
        cancelling = task.cancelling()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as error:
            # Ours only if no one else asked to cancel the task meanwhile. (uncancel()
            # runs whenever our deadline fired, whatever the error, as asyncio.timeout does.)
            if (
                own.expired
                and task.uncancel() <= cancelling
                and isinstance(error, asyncio.CancelledError)
            ):
                raise timed_out() from error
            raise
        finally:
            own.task = None
            reset_deadline(token)
            queue = watch.calls
            while queue and queue[0].task is None:
                queue.popleft()
        if own.expired:
            task.uncancel()  # the call swallowed its cancellation and finished anyway
        return result

    return call_with_timeout
