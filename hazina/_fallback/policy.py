"""Fallback: answer a failed call with a value, or with what a handler makes of the error."""

from __future__ import annotations

import inspect
import threading
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from .._core.conditions import when
from .._core.counters import Counter, new_counter, read_counter
from .._core.decorate import is_async_callable
from .._core.forks import fresh_lock, reset_after_fork
from .._core.host import Host
from .._core.policy import Policy
from .config import NOT_GIVEN, FallbackConfig
from .drivers import async_driver, sync_driver
from .records import FallbackStats, FallbackUsed

#: What the drivers call to produce the fallback: ``(error, args, kwargs) -> result``.
Produce = Callable[[BaseException, tuple[Any, ...], dict[str, Any]], Any]
AsyncProduce = Callable[[BaseException, tuple[Any, ...], dict[str, Any]], Awaitable[Any]]


class Fallback(Policy[FallbackConfig, FallbackStats]):
    """A named fallback policy; get one from ``registry.fallback(name, ...)``."""

    kind = "fallback"
    config_class = FallbackConfig

    exclusive: ClassVar[tuple[tuple[frozenset[str], ...], ...]] = (
        (frozenset({"value"}), frozenset({"handler"})),
    )

    def __init__(self, name: str, config: FallbackConfig, host: Host) -> None:
        super().__init__(name, config, host)
        self.handles: Callable[[BaseException], bool] = when(config.on)
        #: Whether the handler must be awaited, which only an async function can do.
        self.handler_is_async: bool = config.handler is not NOT_GIVEN and is_async_callable(
            config.handler
        )
        producers = self._producers()
        #: The fallback's result for a sync call: ``(error, args, kwargs) -> result``.
        self.sync_handler: Produce = producers[0]
        #: The same for an async call, awaited.
        self.async_handler: AsyncProduce = producers[1]
        # Lock-free counters: every call bumps `calls`, so it must cost no lock.
        self.calls: Counter = new_counter()
        self._fallbacks: Counter = new_counter()
        self._lock = threading.Lock()
        reset_after_fork(self)
        self._base = (0, 0)

    def _apply_config(self, config: FallbackConfig) -> None:
        # Built aside and then swapped, so a call never meets a half-made fallback.
        producers = self._producers(config)
        self.handles = when(config.on)
        self.handler_is_async = config.handler is not NOT_GIVEN and is_async_callable(
            config.handler
        )
        self.sync_handler, self.async_handler = producers
        self.config = config

    def _after_fork_in_child(self) -> None:
        fresh_lock(self._lock)

    def _producers(self, config: FallbackConfig | None = None) -> tuple[Produce, AsyncProduce]:
        """How the sync and async drivers turn an error into the fallback's result."""
        config = self.config if config is None else config
        value, handler, name = config.value, config.handler, self.name
        if handler is NOT_GIVEN:

            def sync_value(error: BaseException, args: Any, kwargs: Any) -> Any:
                return value

            async def async_value(error: BaseException, args: Any, kwargs: Any) -> Any:
                return value

            return sync_value, async_value

        def sync_handler(error: BaseException, args: Any, kwargs: Any) -> Any:
            result = handler(error, *args, **kwargs)
            if inspect.iscoroutine(result):
                result.close()  # never awaited, and never to be: no warning about it
                raise TypeError(
                    f"fallback {name!r}: the handler returned a coroutine to a sync "
                    f"function; give a sync handler, or decorate an async function"
                )
            return result

        async def async_handler(error: BaseException, args: Any, kwargs: Any) -> Any:
            result = handler(error, *args, **kwargs)
            # A plain handler may still hand back an awaitable (a lambda calling a
            # coroutine function): the async caller wants its result, not the awaitable.
            if inspect.isawaitable(result):
                result = await result
            return result

        return sync_handler, async_handler

    def used(self, error: BaseException) -> None:
        """Count and report that the fallback answers a call that failed with ``error``."""
        next(self._fallbacks)
        self.emit(FallbackUsed(self.name, error))

    def stats(self) -> FallbackStats:
        with self._lock:
            calls, fallbacks = self._base
            return FallbackStats(
                calls=read_counter(self.calls) - calls,
                fallbacks=read_counter(self._fallbacks) - fallbacks,
            )

    def reset(self) -> None:
        with self._lock:
            self._base = (read_counter(self.calls), read_counter(self._fallbacks))

    def _sync_driver(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        return sync_driver(self, fn)

    def _async_driver(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        return async_driver(self, fn)
