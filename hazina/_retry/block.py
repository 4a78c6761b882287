"""The block form: ``for attempt in hazina.retrying(...): with attempt: ...``.

Each attempt is a context manager. Its exit hands the block's outcome to the policy's
own :meth:`Retry.plan`, the same decisions the decorator takes: an error worth retrying
is swallowed and the loop yields the next attempt after the wait; any other ending lets
the error through (with the give-up note) or ends the loop. Stats and events are the
decorator's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .._core.switches import WAITS
from .drivers import Attempts, Outcome

if TYPE_CHECKING:
    from .policy import Retry


class Attempt:
    """One attempt of a retried block; use it as ``with attempt:`` (or ``async with``).

    Attributes:
        number: Which attempt this is, from 1.
    """

    __slots__ = ("_run", "number")

    def __init__(self, run: _Run, number: int) -> None:
        self._run: _Run = run
        self.number: int = number

    def __enter__(self) -> Attempt:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        return self._run.finish(self, exc)

    async def __aenter__(self) -> Attempt:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        return self._run.finish(self, exc)

    def __repr__(self) -> str:
        return f"<Attempt {self.number}>"


class _Run:
    """One ``for`` loop over a retrying block: the attempts of one call."""

    __slots__ = ("attempts", "done", "ended", "number", "plan", "retry", "wait")

    def __init__(self, retry: Retry) -> None:
        self.retry: Retry = retry
        clock = retry.clock
        started = clock.now()
        budget = retry.budget
        if budget is not None and started >= budget.next_bucket_at:
            budget.roll(started)  # a success is counted by the policy's first-try count
        self.attempts: Attempts = Attempts(started)
        self.plan: Generator[float, Outcome, Any] | None = None
        self.wait: float = 0.0
        self.done: bool = False
        self.number: int = 0  # of the last attempt yielded
        self.ended: Attempt | None = None

    def next_attempt(self) -> Attempt | None:
        """The next attempt to yield, or ``None`` once the block is done."""
        if self.done:
            return None
        self.number += 1
        return Attempt(self, self.number)

    def finish(self, attempt: Attempt, error: BaseException | None) -> bool:
        """Decide after ``attempt`` ended with ``error`` (or none); whether to swallow it."""
        self.ended = attempt
        retry = self.retry
        try:
            if self.plan is None:
                if error is None:
                    next(retry.first_try_successes)
                    self.done = True
                    return False
                if retry.budget is not None:
                    next(retry.budget.first_attempts)
                if not retry.retryable(error, 1):
                    self.done = True
                    return False
                self.plan = retry.plan(self.attempts, error, None, judge_results=False)
                self.wait = next(self.plan)
            else:
                self.wait = self.plan.send((error, None))
        except StopIteration:
            self.done = True  # a later attempt succeeded
            return False
        except BaseException as ended:
            self.done = True
            if ended is error:
                return False  # the block's own error goes on, with the give-up note
            raise
        return True

    def unfinished(self, attempt: Attempt) -> bool:
        """Whether ``attempt`` was yielded but never used as a context manager.

        The block then ran to its end without ``with attempt``: that is a success.
        """
        if self.ended is attempt:
            return False
        self.finish(attempt, None)
        return True

    def interrupted(self, error: BaseException) -> None:
        """A wait was interrupted: the plan counts the call and lets ``error`` through."""
        assert self.plan is not None
        self.done = True
        try:
            self.plan.throw(error)
        except BaseException as thrown:
            if thrown is not error:
                raise


def attempts_sync(retry: Retry) -> Iterator[Attempt]:
    """The attempts of one retried block, waiting between them on the policy's clock."""
    run = _Run(retry)
    while True:
        attempt = run.next_attempt()
        if attempt is None:
            return
        yield attempt
        if run.unfinished(attempt) or run.done:
            return
        wait = run.wait
        if wait > 0 and not WAITS.instant:
            try:
                retry.clock.sleep(wait)
            except BaseException as interrupted:
                run.interrupted(interrupted)
                raise
        else:
            run.attempts.skipped += wait


async def attempts_async(retry: Retry) -> AsyncIterator[Attempt]:
    run = _Run(retry)
    while True:
        attempt = run.next_attempt()
        if attempt is None:
            return
        yield attempt
        if run.unfinished(attempt) or run.done:
            return
        wait = run.wait
        if wait > 0 and not WAITS.instant:
            try:
                await retry.clock.asleep(wait)
            except BaseException as interrupted:
                run.interrupted(interrupted)
                raise
        else:
            run.attempts.skipped += wait


class Retrying:
    """The attempts of a retried block, for ``for`` or ``async for``; see
    :func:`hazina.retrying`.

    Each iteration is one call of the policy: iterate the same object twice to run the
    block twice.
    """

    __slots__ = ("policy",)

    def __init__(self, policy: Retry) -> None:
        #: The retry policy each iteration runs under.
        self.policy: Retry = policy

    def __iter__(self) -> Iterator[Attempt]:
        return attempts_sync(self.policy)

    def __aiter__(self) -> AsyncIterator[Attempt]:
        return attempts_async(self.policy)

    def __repr__(self) -> str:
        return f"<Retrying {self.policy.name!r}>"
