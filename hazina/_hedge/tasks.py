"""Async hedging: the first attempt runs in the caller's own task, hedges as new tasks.

The first attempt is awaited as an undecorated call would be (same task, same
context), with its first delay kept by the loop's shared :class:`~.timers.Timers`.
A call whose first attempt is fast therefore costs a heap entry pushed and blanked,
and no task, no timer and no :class:`TaskRace` of its own. When a hedge wins (or must
end the call) while the first attempt still runs, the caller's task is cancelled and
the cancellation taken back (``uncancel``), the way ``asyncio.timeout`` does it, so a
cancellation from outside is never swallowed.
Losers are cancelled and awaited before the call returns, so none outlives it.
"""

from __future__ import annotations

import asyncio
from asyncio import AbstractEventLoop, CancelledError, Future, Task, TimerHandle
from collections.abc import Awaitable, Callable
from contextvars import Context
from typing import TYPE_CHECKING, Any

from .race import RAISE, START, WAIT, WIN, Race, Verdict
from .timers import Entry

if TYPE_CHECKING:
    from .policy import Hedge


# A call's entry in its loop's timers (see .timers): made on every call, so it is one
# list, [deadline, seq, due, hedge, fn, args, kwargs, delay, task, context, race], cut
# back to [deadline, seq] when the first attempt ends; `race` is set once there is one.
DUE, HEDGE, FN, ARGS, KWARGS, DELAY, TASK, CONTEXT, RACE = range(2, 11)


def delay_passed(entry: Entry) -> None:
    """The first delay of a call passed without a result: its race begins."""
    race = entry[RACE] = TaskRace(entry)
    # In the caller's context, as a listener of the event it emits expects.
    race.context.run(race.on_delay)


async def first_failed(entry: Entry, error: BaseException) -> Any:
    """The first attempt raised ``error``: go on as its race decides."""
    race: TaskRace = entry[RACE] or TaskRace(entry)
    del entry[DUE:]
    return await race.first_failed(error)


class TaskRace:
    """One async hedged call that is more than one plain await."""

    __slots__ = (
        "args",
        "cancelling",
        "context",
        "delay",
        "first_running",
        "fn",
        "hedge",
        "hedges",
        "kwargs",
        "loop",
        "outcome",
        "race",
        "requested",
        "task",
        "timer",
        "waiter",
    )

    def __init__(self, entry: Entry) -> None:
        self.hedge: Hedge = entry[HEDGE]
        self.fn: Callable[..., Awaitable[Any]] = entry[FN]
        self.args: tuple[Any, ...] = entry[ARGS]
        self.kwargs: dict[str, Any] = entry[KWARGS]
        self.delay: float = entry[DELAY]
        task: Task[Any] | None = entry[TASK]
        assert task is not None, "a coroutine awaited outside any task"
        self.task = task
        self.loop: AbstractEventLoop = task.get_loop()
        # Hedges start in copies of the caller's context as it was at the call.
        self.context: Context = entry[CONTEXT]
        #: The delays after the first, each a timer of this race's own.
        self.timer: TimerHandle | None = None
        self.begin()

    # -- the race, begun only when it is more than one plain await ---------------------

    def begin(self) -> None:
        """The state a race needs beyond what a plain await did."""
        # Read before anything of ours can cancel the caller, like asyncio.timeout does on
        # entry: a cancellation requested later by anyone else shows as a count above
        # this one, and is never taken for ours. One requested before and not yet
        # delivered reaches the first attempt before any hedge can end, since a hedge
        # task needs a loop turn to run and another for its end to be seen.
        self.cancelling = self.task.cancelling()
        self.race: Race = Race(self.hedge)
        self.hedges: dict[Task[Any], int] = {}
        self.first_running = True
        self.requested = False
        self.outcome: tuple[BaseException | None, Any] = (None, None)
        self.waiter: Future[None] | None = None

    def on_delay(self) -> None:
        """The delay passed without a result: start the next attempt, if one is left."""
        self.timer = None
        race = self.race
        if race.can_hedge():
            self.launch(race.next_hedge(None))

    def launch(self, number: int) -> None:
        task = self.loop.create_task(self.attempt(), context=self.context.copy())
        self.hedges[task] = number
        task.add_done_callback(self.on_hedge_done)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.race.can_hedge():
            self.timer = self.loop.call_later(self.delay, self.on_delay, context=self.context)

    async def attempt(self) -> Any:
        return await self.fn(*self.args, **self.kwargs)

    def on_hedge_done(self, task: Task[Any]) -> None:
        # Read the outcome even of a loser, so asyncio never logs it as unretrieved.
        error = CancelledError() if task.cancelled() else task.exception()
        race = self.race
        if race.decided:
            return
        result = None if error is not None else task.result()
        self.act(race.finished(self.hedges[task], error), error, result)

    def act(self, verdict: Verdict, error: BaseException | None, result: Any) -> None:
        race = self.race
        if verdict is START:
            self.launch(race.next_hedge(error))
            return
        if verdict is WAIT:
            return
        if verdict is WIN:
            self.outcome = (None, result)
        else:
            self.outcome = (error if verdict is RAISE else race.failure(), None)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.first_running:
            # The first attempt runs in the caller's task: only cancelling it stops it.
            self.requested = True
            self.task.cancel()
        elif self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    # -- the caller's side, once its first attempt has ended -----------------------

    async def first_failed(self, error: BaseException) -> Any:
        race = self.race
        self.first_running = False
        if self.requested:
            self.requested = False
            if self.task.uncancel() > self.cancelling and isinstance(error, CancelledError):
                await self.settle()
                raise error  # cancelled from outside as well: that wins
            return await self.conclude()
        self.act(race.finished(0, error), error, None)
        if not race.decided:
            self.waiter = self.loop.create_future()
            try:
                await self.waiter
            except CancelledError:
                race.decided = True
                await self.settle()
                raise
        return await self.conclude()

    async def first_succeeded(self, result: Any) -> Any:
        race = self.race
        self.first_running = False
        if self.requested:
            # The attempt swallowed the cancellation meant to stop it: take it back.
            self.requested = False
            self.task.uncancel()
        if not race.decided:
            self.act(race.finished(0, None), None, result)
        return await self.conclude()

    async def conclude(self) -> Any:
        await self.settle()
        error, result = self.outcome
        if error is not None:
            raise error
        return result

    async def settle(self) -> None:
        """Cancel every attempt still running and wait until each has ended.

        Like ``asyncio.TaskGroup``, it goes on waiting when the caller is cancelled
        meanwhile, and re-raises that cancellation once nothing is left running.
        """
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        pending = [task for task in self.hedges if not task.done()]
        for task in pending:
            task.cancel()
        interrupted: CancelledError | None = None
        while pending:
            try:
                await asyncio.wait(pending)
            except CancelledError as cancelled:
                interrupted = cancelled
            pending = [task for task in pending if not task.done()]
        if interrupted is not None:
            raise interrupted
