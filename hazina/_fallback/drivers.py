"""Fallback's drivers: a call, and on a matching error the fallback's answer instead.

A call that succeeds costs one counter bump and a ``try`` block. Only ``Exception``
is caught: cancellation, ``KeyboardInterrupt`` and ``SystemExit`` pass through
untouched whatever ``on`` says, because a fallback that swallowed them would keep a
cancelled task running or a process from exiting.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .policy import Fallback


def sync_driver(fallback: Fallback, fn: Callable[..., Any]) -> Callable[..., Any]:
    """A plain function that calls ``fn`` under ``fallback``."""
    calls, handles, used = fallback.calls, fallback.handles, fallback.used
    produce = fallback.sync_handler

    def call_with_fallback(*args: Any, **kwargs: Any) -> Any:
        next(calls)
        try:
            return fn(*args, **kwargs)
        except Exception as error:
            if not handles(error):
                raise
            used(error)
            # Inside the `except`: an error the handler raises chains to this one.
            return produce(error, args, kwargs)

    return call_with_fallback


def async_driver(
    fallback: Fallback, fn: Callable[..., Awaitable[Any]]
) -> Callable[..., Awaitable[Any]]:
    """An ``async def`` function that awaits ``fn`` under ``fallback``."""
    calls, handles, used = fallback.calls, fallback.handles, fallback.used
    produce = fallback.async_handler

    async def call_with_fallback(*args: Any, **kwargs: Any) -> Any:
        next(calls)
        try:
            return await fn(*args, **kwargs)
        except Exception as error:
            if not handles(error):
                raise
            used(error)
            return await produce(error, args, kwargs)

    return call_with_fallback
