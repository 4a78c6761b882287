"""The breaker's drivers: the code that runs on every call of a decorated function.

A closed breaker's call costs one attribute read before and one counter bump after;
everything else (admitting a probe, recording a failure) is a method of the policy.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from time import monotonic
from typing import TYPE_CHECKING, Any

from .._core.clock import is_system_clock
from .records import CLOSED, SUCCESS

if TYPE_CHECKING:
    from .policy import CircuitBreaker


def sync_driver(breaker: CircuitBreaker, fn: Callable[..., Any]) -> Callable[..., Any]:
    """A plain function that calls ``fn`` through ``breaker``."""
    if breaker.config.slow_call_duration is not None or breaker.config.window == "time":
        return timed_sync_driver(breaker, fn)
    admit, completions, on_error = breaker.admit, breaker.completions, breaker.record_error
    complete = breaker.record

    def call_through_breaker(*args: Any, **kwargs: Any) -> Any:
        probe = None if breaker.stored_state is CLOSED else admit()
        try:
            result = fn(*args, **kwargs)
        except BaseException as error:
            on_error(error, probe, 0.0)
            raise
        if probe is None:
            next(completions)
        else:
            complete(SUCCESS, probe, 0.0)
        return result

    return call_through_breaker


def async_driver(
    breaker: CircuitBreaker, fn: Callable[..., Awaitable[Any]]
) -> Callable[..., Awaitable[Any]]:
    """An ``async def`` function that awaits ``fn`` through ``breaker``."""
    if breaker.config.slow_call_duration is not None or breaker.config.window == "time":
        return timed_async_driver(breaker, fn)
    admit, completions, on_error = breaker.admit, breaker.completions, breaker.record_error
    complete = breaker.record

    async def call_through_breaker(*args: Any, **kwargs: Any) -> Any:
        probe = None if breaker.stored_state is CLOSED else admit()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as error:
            on_error(error, probe, 0.0)
            raise
        if probe is None:
            next(completions)
        else:
            complete(SUCCESS, probe, 0.0)
        return result

    return call_through_breaker


# With a time window or a slow-call rule the breaker needs the time of each call;
# the plain drivers above stay free of clock reads. A success leaves the hot path
# only when it was slow or is the first completion of a new second.


def timed_sync_driver(breaker: CircuitBreaker, fn: Callable[..., Any]) -> Callable[..., Any]:
    admit, complete, on_error = breaker.admit, breaker.record, breaker.record_error
    completions, window, now = breaker.completions, breaker.window, breaker.clock.now
    real_time = is_system_clock(breaker.clock)
    slow_after = breaker.config.slow_call_duration or math.inf

    def call_through_breaker(*args: Any, **kwargs: Any) -> Any:
        probe = None if breaker.stored_state is CLOSED else admit()
        started = monotonic() if real_time else now()
        try:
            result = fn(*args, **kwargs)
        except BaseException as error:
            on_error(error, probe, now() - started)
            raise
        ended = monotonic() if real_time else now()
        if (
            probe is None
            and ended - started < slow_after
            and window.bucket_start <= ended < window.bucket_end
        ):
            next(completions)
        else:
            complete(SUCCESS, probe, ended - started)
        return result

    return call_through_breaker


def timed_async_driver(
    breaker: CircuitBreaker, fn: Callable[..., Awaitable[Any]]
) -> Callable[..., Awaitable[Any]]:
    admit, complete, on_error = breaker.admit, breaker.record, breaker.record_error
    completions, window, now = breaker.completions, breaker.window, breaker.clock.now
    real_time = is_system_clock(breaker.clock)
    slow_after = breaker.config.slow_call_duration or math.inf

    async def call_through_breaker(*args: Any, **kwargs: Any) -> Any:
        probe = None if breaker.stored_state is CLOSED else admit()
        started = monotonic() if real_time else now()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as error:
            on_error(error, probe, now() - started)
            raise
        ended = monotonic() if real_time else now()
        if (
            probe is None
            and ended - started < slow_after
            and window.bucket_start <= ended < window.bucket_end
        ):
            next(completions)
        else:
            complete(SUCCESS, probe, ended - started)
        return result

    return call_through_breaker
