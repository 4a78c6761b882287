"""Retry's drivers: the first attempt inline, and the loop that performs the plan's waits.

A call that succeeds at once costs one clock read and one counter bump; the loop,
where the waiting happens, runs only after a failure and takes its decisions from
:meth:`Retry.plan`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from time import monotonic
from typing import TYPE_CHECKING, Any, TypeAlias

import attrs

from .._core.clock import is_system_clock
from .._core.switches import WAITS

if TYPE_CHECKING:
    from .policy import Retry

#: One attempt's outcome: the error it raised, or ``None`` and the result it returned.
Outcome: TypeAlias = tuple[BaseException | None, Any]


@attrs.define
class Attempts:
    """One call's retry state; never shared between calls."""

    started: float
    number: int = 1
    previous_wait: float = 0.0
    #: Seconds of waits skipped by ``instant_waits()``, which still count toward ``timeout``.
    skipped: float = 0.0


# The first attempt runs inline; only a failure (or a rejected result) leaves
# the hot path for the retry loop. A policy with a budget gets drivers of its own, so
# one without pays nothing for budgets.


def sync_driver(retry: Retry, fn: Callable[..., Any]) -> Callable[..., Any]:
    """A plain function that calls ``fn`` under ``retry``."""
    if retry.budget is not None:
        return budgeted_sync_driver(retry, fn)
    now, first_try = retry.clock.now, retry.first_try_successes
    real_time = is_system_clock(retry.clock)
    retryable, retry_loop = retry.retryable, retry_sync
    retry_result = None if retry.config.on_result is None else retry.result_retryable

    def call_with_retry(*args: Any, **kwargs: Any) -> Any:
        # Read before the first attempt: `timeout` and the give-up note count it.
        started = monotonic() if real_time else now()
        try:
            result = fn(*args, **kwargs)
        except BaseException as error:
            if not retryable(error, 1):
                raise
            return retry_loop(retry, fn, args, kwargs, Attempts(started), error)
        if retry_result is not None and retry_result(result, 1):
            return retry_loop(retry, fn, args, kwargs, Attempts(started), None, result)
        next(first_try)
        return result

    return call_with_retry


def async_driver(retry: Retry, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """An ``async def`` function that awaits ``fn`` under ``retry``."""
    if retry.budget is not None:
        return budgeted_async_driver(retry, fn)
    now, first_try = retry.clock.now, retry.first_try_successes
    real_time = is_system_clock(retry.clock)
    retryable, retry_loop = retry.retryable, retry_async
    retry_result = None if retry.config.on_result is None else retry.result_retryable

    async def call_with_retry(*args: Any, **kwargs: Any) -> Any:
        started = monotonic() if real_time else now()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as error:
            if not retryable(error, 1):
                raise
            return await retry_loop(retry, fn, args, kwargs, Attempts(started), error)
        if retry_result is not None and retry_result(result, 1):
            return await retry_loop(retry, fn, args, kwargs, Attempts(started), None, result)
        next(first_try)
        return result

    return call_with_retry


def budgeted_sync_driver(retry: Retry, fn: Callable[..., Any]) -> Callable[..., Any]:
    """:func:`sync_driver` that also keeps the retry's budget up to date.

    The budget reads this policy's count of first-try successes; a failed first attempt
    is deposited into the budget here.
    """
    assert retry.budget is not None
    budget = retry.budget
    deposited, roll = budget.first_attempts, budget.roll
    now, first_try = retry.clock.now, retry.first_try_successes
    real_time = is_system_clock(retry.clock)
    retryable, retry_loop = retry.retryable, retry_sync
    retry_result = None if retry.config.on_result is None else retry.result_retryable

    def call_with_retry(*args: Any, **kwargs: Any) -> Any:
        started = monotonic() if real_time else now()
        # A success is counted by `first_try`, which the budget reads too; all the
        # budget adds here is to notice that a new tenth of its window has begun.
        if started >= budget.next_bucket_at:
            roll(started)
        try:
            result = fn(*args, **kwargs)
        except BaseException as error:
            next(deposited)
            if not retryable(error, 1):
                raise
            return retry_loop(retry, fn, args, kwargs, Attempts(started), error)
        if retry_result is not None and retry_result(result, 1):
            next(deposited)
            return retry_loop(retry, fn, args, kwargs, Attempts(started), None, result)
        next(first_try)
        return result

    return call_with_retry


def budgeted_async_driver(
    retry: Retry, fn: Callable[..., Awaitable[Any]]
) -> Callable[..., Awaitable[Any]]:
    """:func:`async_driver` that also counts each first attempt into the retry's budget."""
    assert retry.budget is not None
    budget = retry.budget
    deposited, roll = budget.first_attempts, budget.roll
    now, first_try = retry.clock.now, retry.first_try_successes
    real_time = is_system_clock(retry.clock)
    retryable, retry_loop = retry.retryable, retry_async
    retry_result = None if retry.config.on_result is None else retry.result_retryable

    async def call_with_retry(*args: Any, **kwargs: Any) -> Any:
        started = monotonic() if real_time else now()
        if started >= budget.next_bucket_at:
            roll(started)
        try:
            result = await fn(*args, **kwargs)
        except BaseException as error:
            next(deposited)
            if not retryable(error, 1):
                raise
            return await retry_loop(retry, fn, args, kwargs, Attempts(started), error)
        if retry_result is not None and retry_result(result, 1):
            next(deposited)
            return await retry_loop(retry, fn, args, kwargs, Attempts(started), None, result)
        next(first_try)
        return result

    return call_with_retry


# The retry loop lives once, in _plan, without I/O; these drivers only wait and call.


def retry_sync(
    retry: Retry,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    attempts: Attempts,
    error: BaseException | None,
    result: Any = None,
) -> Any:
    """Wait and call again as ``retry.plan`` decides, after a failed first attempt."""
    plan = retry.plan(attempts, error, result)
    try:
        wait = next(plan)
        while True:
            if wait > 0 and not WAITS.instant:
                try:
                    retry.clock.sleep(wait)
                except BaseException as interrupted:
                    plan.throw(interrupted)
            else:
                attempts.skipped += wait
            try:
                outcome: Outcome = (None, fn(*args, **kwargs))
            except BaseException as failure:
                outcome = (failure, None)
            wait = plan.send(outcome)
    except StopIteration as done:
        return done.value


async def retry_async(
    retry: Retry,
    fn: Callable[..., Awaitable[Any]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    attempts: Attempts,
    error: BaseException | None,
    result: Any = None,
) -> Any:
    plan = retry.plan(attempts, error, result)
    try:
        wait = next(plan)
        while True:
            if wait > 0 and not WAITS.instant:
                try:
                    await retry.clock.asleep(wait)
                except BaseException as interrupted:
                    plan.throw(interrupted)
            else:
                attempts.skipped += wait
            try:
                outcome: Outcome = (None, await fn(*args, **kwargs))
            except BaseException as failure:
                outcome = (failure, None)
            wait = plan.send(outcome)
    except StopIteration as done:
        return done.value
