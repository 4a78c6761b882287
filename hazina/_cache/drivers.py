"""The cache's drivers: a hit served inline, a miss handed to the policy's loader.

The hit path is written out in both drivers (a method call would cost as much as the
rest of it): one dict lookup, one clock read and one store of it (none for an entry
that never expires), one C-level move_to_end, one lock-free count. Debug logging and
``hazina.testing.disabled()`` share one attribute read (the hit's slow lane); the flag
is refreshed when a driver is built, on misses and when the switch flips, never per hit.
Everything the hit path uses is bound to a local once, when it is built, so it reads
only locals and closure cells; a miss reads the entry options from the policy, so
reconfiguring them (``ttl``...) leaves the driver as it is.
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
    # A big store is sharded (see store.py): a key's entry is in its hash's shard.
    gets, mask = cache.store.gets, cache.store.mask
    always_build = build_key is not plain_key
    real_time, clock_now, debug, name = cache.real_time, cache.clock.now, DEBUG, cache.name
    load, explain = cache.load_sync, cache.explain_unhashable

    def cached_call(*args: Any, **kwargs: Any) -> Any:
        # A call without keyword arguments is its own key: no tuple is built.
        key = build_key(args, kwargs) if kwargs or always_build else args
        try:
            entry = gets[hash(key) & mask](key) if mask else lookup(key)
        except TypeError as error:
            raise explain(fn, args, kwargs, error) from None
        if entry is not None:
            deadline = entry.deadline
            # Below `seen` the clock stepped back: the lock's path rebases the entries.
            if deadline is NEVER or (
                deadline > (now := monotonic() if real_time else clock_now()) >= cache.seen
            ):
                if debug.on:  # the hit's slow lane: debug logging, or caching switched off
                    if DISABLED.on:
                        return fn(*args, **kwargs)
                    logger.debug("cache %r: hit for %r", name, key)
                if deadline is not NEVER:
                    # Racing readers may leave an earlier reading: that only makes
                    # the check above let a later step back through to the lock.
                    cache.seen = now
                # A local, so the slot read specialises (a method-style call on it
                # does not); a try, as contextlib.suppress would cost more than the
                # rest of the hit.
                touch = entry.touch
                try:  # noqa: SIM105
                    touch(key)
                except KeyError:
                    pass  # removed since the lookup, which still read a fresh value
                if entry.sliding is not None:  # a sliding entry's deadline is never NEVER
                    entry.slide(now)
                next(hits)
                return entry.value
        return load(key, fn, args, kwargs, cache.default_entry_options)

    return cached_call


def async_driver(cache: Cache, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """An ``async def`` function that serves ``fn``'s calls from ``cache``."""
    DEBUG.refresh()
    lookup, hits, build_key = cache.store.entries.get, cache.hits, cache.build_key
    # A big store is sharded (see store.py): a key's entry is in its hash's shard.
    gets, mask = cache.store.gets, cache.store.mask
    always_build = build_key is not plain_key
    real_time, clock_now, debug, name = cache.real_time, cache.clock.now, DEBUG, cache.name
    load, explain = cache.load_async, cache.explain_unhashable

    async def cached_call(*args: Any, **kwargs: Any) -> Any:
        # A call without keyword arguments is its own key: no tuple is built.
        key = build_key(args, kwargs) if kwargs or always_build else args
        try:
            entry = gets[hash(key) & mask](key) if mask else lookup(key)
        except TypeError as error:
            raise explain(fn, args, kwargs, error) from None
        if entry is not None:
            deadline = entry.deadline
            # Below `seen` the clock stepped back: the lock's path rebases the entries.
            if deadline is NEVER or (
                deadline > (now := monotonic() if real_time else clock_now()) >= cache.seen
            ):
                if debug.on:  # the hit's slow lane: debug logging, or caching switched off
                    if DISABLED.on:
                        return await fn(*args, **kwargs)
                    logger.debug("cache %r: hit for %r", name, key)
                if deadline is not NEVER:
                    # Racing readers may leave an earlier reading: that only makes
                    # the check above let a later step back through to the lock.
                    cache.seen = now
                # A local, so the slot read specialises (a method-style call on it
                # does not); a try, as contextlib.suppress would cost more than the
                # rest of the hit.
                touch = entry.touch
                try:  # noqa: SIM105
                    touch(key)
                except KeyError:
                    pass  # removed since the lookup, which still read a fresh value
                if entry.sliding is not None:  # a sliding entry's deadline is never NEVER
                    entry.slide(now)
                next(hits)
                return entry.value
        return await load(key, fn, args, kwargs, cache.default_entry_options)

    return cached_call


def sync_refreshing_driver(cache: Cache, fn: Callable[..., Any]) -> Callable[..., Any]:
    """As :func:`sync_driver`, for a cache with ``refresh_after`` or ``stale_if_error``.

    Its entries hold ``(value, refresh_at)`` and are fresh until ``deadline - stale``
    (see the policy). A hit past ``refresh_at`` returns the value at once and asks the
    policy for a background refresh, which it starts only if none runs for the key.
    """
    DEBUG.refresh()
    lookup, hits, build_key = cache.store.entries.get, cache.hits, cache.build_key
    # A big store is sharded (see store.py): a key's entry is in its hash's shard.
    gets, mask = cache.store.gets, cache.store.mask
    always_build = build_key is not plain_key
    real_time, clock_now, debug, name = cache.real_time, cache.clock.now, DEBUG, cache.name
    load, explain, refresh = cache.load_sync, cache.explain_unhashable, cache.refresh_sync
    stale = cache.stale

    def cached_call(*args: Any, **kwargs: Any) -> Any:
        key = build_key(args, kwargs) if kwargs or always_build else args
        try:
            entry = gets[hash(key) & mask](key) if mask else lookup(key)
        except TypeError as error:
            raise explain(fn, args, kwargs, error) from None
        if entry is not None:
            now = monotonic() if real_time else clock_now()
            # Below `seen` the clock stepped back: the lock's path rebases the entries.
            if entry.deadline - stale > now >= cache.seen:
                cache.seen = now
                touch = entry.touch
                try:  # noqa: SIM105
                    touch(key)
                except KeyError:
                    pass  # removed since the lookup, which still read a fresh value
                if entry.sliding is not None:
                    entry.slide(now)
                next(hits)
                if debug.on:
                    logger.debug("cache %r: hit for %r", name, key)
                value, refresh_at = entry.value
                if refresh_at <= now:
                    refresh(key, entry, fn, args, kwargs, cache.default_entry_options)
                return value
        return load(key, fn, args, kwargs, cache.default_entry_options)

    return cached_call


def async_refreshing_driver(
    cache: Cache, fn: Callable[..., Awaitable[Any]]
) -> Callable[..., Awaitable[Any]]:
    """As :func:`async_driver`, for a cache with ``refresh_after`` or ``stale_if_error``.

    Its entries hold ``(value, refresh_at)`` and are fresh until ``deadline - stale``
    (see the policy). A hit past ``refresh_at`` returns the value at once and asks the
    policy for a background refresh, which it starts only if none runs for the key.
    """
    DEBUG.refresh()
    lookup, hits, build_key = cache.store.entries.get, cache.hits, cache.build_key
    # A big store is sharded (see store.py): a key's entry is in its hash's shard.
    gets, mask = cache.store.gets, cache.store.mask
    always_build = build_key is not plain_key
    real_time, clock_now, debug, name = cache.real_time, cache.clock.now, DEBUG, cache.name
    load, explain, refresh = cache.load_async, cache.explain_unhashable, cache.refresh_async
    stale = cache.stale

    async def cached_call(*args: Any, **kwargs: Any) -> Any:
        key = build_key(args, kwargs) if kwargs or always_build else args
        try:
            entry = gets[hash(key) & mask](key) if mask else lookup(key)
        except TypeError as error:
            raise explain(fn, args, kwargs, error) from None
        if entry is not None:
            now = monotonic() if real_time else clock_now()
            # Below `seen` the clock stepped back: the lock's path rebases the entries.
            if entry.deadline - stale > now >= cache.seen:
                cache.seen = now
                touch = entry.touch
                try:  # noqa: SIM105
                    touch(key)
                except KeyError:
                    pass  # removed since the lookup, which still read a fresh value
                if entry.sliding is not None:
                    entry.slide(now)
                next(hits)
                if debug.on:
                    logger.debug("cache %r: hit for %r", name, key)
                value, refresh_at = entry.value
                if refresh_at <= now:
                    refresh(key, entry, fn, args, kwargs, cache.default_entry_options)
                return value
        return await load(key, fn, args, kwargs, cache.default_entry_options)

    return cached_call
