"""Chaos drivers: disabled, one attribute read and the call; enabled, the faults first.

An injected delay comes before the call (cut short at an enclosing deadline, skipped
under ``instant_waits()``); an injected error or result replaces the call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .._core.switches import WAITS
from .config import NOT_GIVEN

if TYPE_CHECKING:
    from .policy import Chaos


def sync_driver(chaos: Chaos, fn: Callable[..., Any]) -> Callable[..., Any]:
    """A plain function that calls ``fn`` with ``chaos``'s faults."""
    decide, pause, sleep = chaos.decide, chaos.pause, chaos.clock.sleep

    def call_with_chaos(*args: Any, **kwargs: Any) -> Any:
        if not chaos.enabled:
            return fn(*args, **kwargs)
        delay, error, result = decide()
        if delay and not WAITS.instant:
            sleep(pause(delay))
        if error is not None:
            raise error
        if result is not NOT_GIVEN:
            return result
        return fn(*args, **kwargs)

    return call_with_chaos


def async_driver(chaos: Chaos, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """An ``async def`` function that awaits ``fn`` with ``chaos``'s faults."""
    decide, pause, sleep = chaos.decide, chaos.pause, chaos.clock.asleep

    async def call_with_chaos(*args: Any, **kwargs: Any) -> Any:
        if not chaos.enabled:
            return await fn(*args, **kwargs)
        delay, error, result = decide()
        if delay and not WAITS.instant:
            await sleep(pause(delay))
        if error is not None:
            raise error
        if result is not NOT_GIVEN:
            return result
        return await fn(*args, **kwargs)

    return call_with_chaos
