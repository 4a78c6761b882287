"""Hedge's drivers: the code that runs on every call of a hedged function.

They are not twins. A sync caller cannot leave an attempt it runs itself, so every
sync attempt runs on a worker thread (:mod:`.threads`); an async caller awaits its
first attempt in its own task and only hedges become tasks (:mod:`.tasks`). Both
follow the same decisions (:mod:`.race`), and a call whose first attempt succeeds
within the delay never leaves the few lines below.
"""

from __future__ import annotations

from asyncio import current_task, get_running_loop
from collections.abc import Awaitable, Callable
from contextvars import copy_context
from time import monotonic
from typing import TYPE_CHECKING, Any

from .._core.switches import DISABLED
from .tasks import DUE, RACE, delay_passed, first_failed
from .threads import WORKERS, Attempts, race_threads
from .timers import Entry, timers_for

if TYPE_CHECKING:
    from .policy import Hedge


def sync_driver(hedge: Hedge, fn: Callable[..., Any]) -> Callable[..., Any]:
    """A plain function that calls ``fn`` under ``hedge``, attempts on worker threads."""
    calls, delay_of, run = hedge.calls, hedge.delay_of, WORKERS.run

    def call_with_hedge(*args: Any, **kwargs: Any) -> Any:
        next(calls)
        if DISABLED.on:  # hazina.testing.disabled(): one attempt, in the caller's thread
            return fn(*args, **kwargs)
        delay = delay_of()
        started = monotonic()
        attempts = Attempts(fn, args, kwargs)
        # Context variables travel with the attempt; thread locals cannot.
        run(copy_context(), attempts.attempt, 0)
        if attempts.news.acquire(True, delay):
            _, error, result = attempts.outcomes[0]
            if error is None:
                return result
        return race_threads(hedge, attempts, delay, started)

    return call_with_hedge


def async_driver(hedge: Hedge, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """An ``async def`` function that awaits ``fn`` under ``hedge``."""
    calls, delay_of = hedge.calls, hedge.delay_of

    async def call_with_hedge(*args: Any, **kwargs: Any) -> Any:
        next(calls)
        if DISABLED.on:  # hazina.testing.disabled(): one attempt
            return await fn(*args, **kwargs)
        loop = get_running_loop()
        delay = delay_of()
        # Everything a race would need, in the one list its loop's timers keep anyway.
        task, context = current_task(loop), copy_context()
        entry: Entry = [0.0, 0, delay_passed, hedge, fn, args, kwargs, delay, task, context, None]
        timers_for(loop).add(loop, delay, entry)
        try:
            result = await fn(*args, **kwargs)
        except BaseException as error:
            return await first_failed(entry, error)
        race = entry[RACE]
        del entry[DUE:]
        if race is None:
            return result
        return await race.first_succeeded(result)

    return call_with_hedge
