"""The cache's drivers: a hit served inline, a miss handed to the policy's loader.

The hit path is written out in both drivers (a method call would cost as much as the
rest of it): one dict lookup, one clock read (none for an entry that never expires),
one C-level move_to_end, one lock-free count. Debug logging and
``hazina.testing.disabled()`` share one attribute read (the hit's slow lane); the flag
is refreshed when a driver is built, on misses and when the switch flips, never per hit.
Everything a driver uses is bound to a local once, when it is built, so the hot path
reads only locals and closure cells.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from time import monotonic
from typing import TYPE_CHECKING, Any

from .._core.switches import DISABLED
from .expiry import NEVER
from .keys import plain_key
from .log import DEBUG, logger

if TYPE_CHECKING:
    from .policy import Cache


def sync_driver(cache: Cache, fn: Callable[..., Any]) -> Callable[..., Any]:
    """A plain function that serves ``fn``'s calls from ``cache``."""
    DEBUG.refresh()
    lookup, hits, build_key = cache.store.entries.get, cache.hits, cache.build_key
    always_build = build_key is not plain_key
    real_time, clock_now, debug, name = cache.real_time, cache.clock.now, DEBUG, cache.name
    load, explain = cache.load_sync, cache.explain_unhashable
    options = cache.default_entry_options

    def cached_call(*args: Any, **kwargs: Any) -> Any:
        # A call without keyword arguments is its own key: no tuple is built.
        key = build_key(args, kwargs) if kwargs or always_build else args
        try:
            entry = lookup(key)
        except TypeError as error:
            raise explain(fn, args, kwargs, error) from None
        if entry is not None:
            deadline = entry.deadline
            if deadline is NEVER or deadline > (monotonic() if real_time else clock_now()):
                if debug.on:  # the hit's slow lane: debug logging, or caching switched off
                    if DISABLED.on:
                        return fn(*args, **kwargs)
                    logger.debug("cache %r: hit for %r", name, key)
                # A local, so the slot read specialises (a method-style call on it
                # does not); a try, as contextlib.suppress would cost more than the
                # rest of the hit.
                touch = entry.touch
                try:  # noqa: SIM105
                    touch(key)
                except KeyError:
                    pass  # removed since the lookup, which still read a fresh value
                if entry.sliding is not None:
                    entry.slide(monotonic() if real_time else clock_now())
                next(hits)
                return entry.value
        return load(key, fn, args, kwargs, options)

    return cached_call


def async_driver(cache: Cache, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """An ``async def`` function that serves ``fn``'s calls from ``cache``."""
    DEBUG.refresh()
    lookup, hits, build_key = cache.store.entries.get, cache.hits, cache.build_key
    always_build = build_key is not plain_key
    real_time, clock_now, debug, name = cache.real_time, cache.clock.now, DEBUG, cache.name
    load, explain = cache.load_async, cache.explain_unhashable
    options = cache.default_entry_options

    async def cached_call(*args: Any, **kwargs: Any) -> Any:
        # A call without keyword arguments is its own key: no tuple is built.
        key = build_key(args, kwargs) if kwargs or always_build else args
        try:
            entry = lookup(key)
        except TypeError as error:
            raise explain(fn, args, kwargs, error) from None
        if entry is not None:
            deadline = entry.deadline
            if deadline is NEVER or deadline > (monotonic() if real_time else clock_now()):
                if debug.on:  # the hit's slow lane: debug logging, or caching switched off
                    if DISABLED.on:
                        return await fn(*args, **kwargs)
                    logger.debug("cache %r: hit for %r", name, key)
                # A local, so the slot read specialises (a method-style call on it
                # does not); a try, as contextlib.suppress would cost more than the
                # rest of the hit.
                touch = entry.touch
                try:  # noqa: SIM105
                    touch(key)
                except KeyError:
                    pass  # removed since the lookup, which still read a fresh value
                if entry.sliding is not None:
                    entry.slide(monotonic() if real_time else clock_now())
                next(hits)
                return entry.value
        return await load(key, fn, args, kwargs, options)

    return cached_call
