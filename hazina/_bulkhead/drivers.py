"""The bulkhead's drivers: take a slot, run the call, hand the slot on.

An admitted call without a key costs two round trips of one lock (in and out) and a
few integer operations; anything else (a key, a full bulkhead, waiting in line) goes
through the policy's methods.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .policy import Bulkhead


def sync_driver(bulkhead: Bulkhead, fn: Callable[..., Any]) -> Callable[..., Any]:
    """A plain function that calls ``fn`` within ``bulkhead``."""
    key_of = bulkhead.config.key
    if key_of is not None:
        return keyed_sync_driver(bulkhead, fn, key_of)
    acquire, release = bulkhead.lock.acquire, bulkhead.lock.release
    shared, counts, limit = bulkhead.shared, bulkhead.counts, bulkhead.limit
    queue, enter, free = bulkhead.shared.queue, bulkhead.enter_slow_sync, bulkhead.free

    def call_in_bulkhead(*args: Any, **kwargs: Any) -> Any:
        acquire()
        try:
            admitted = shared.active < limit and not queue
            if admitted:
                shared.active += 1
                counts.admitted += 1
                if shared.active > counts.peak:
                    counts.peak = shared.active
        finally:
            release()
        if not admitted:
            enter(shared, None)
        try:
            return fn(*args, **kwargs)
        finally:
            acquire()
            try:
                if queue:
                    free(shared)
                else:
                    shared.active -= 1
            finally:
                release()

    return call_in_bulkhead


def async_driver(
    bulkhead: Bulkhead, fn: Callable[..., Awaitable[Any]]
) -> Callable[..., Awaitable[Any]]:
    """An ``async def`` function that awaits ``fn`` within ``bulkhead``."""
    key_of = bulkhead.config.key
    if key_of is not None:
        return keyed_async_driver(bulkhead, fn, key_of)
    acquire, release = bulkhead.lock.acquire, bulkhead.lock.release
    shared, counts, limit = bulkhead.shared, bulkhead.counts, bulkhead.limit
    queue, enter, free = bulkhead.shared.queue, bulkhead.enter_slow_async, bulkhead.free

    async def call_in_bulkhead(*args: Any, **kwargs: Any) -> Any:
        acquire()
        try:
            admitted = shared.active < limit and not queue
            if admitted:
                shared.active += 1
                counts.admitted += 1
                if shared.active > counts.peak:
                    counts.peak = shared.active
        finally:
            release()
        if not admitted:
            await enter(shared, None)
        try:
            return await fn(*args, **kwargs)
        finally:
            acquire()
            try:
                if queue:
                    free(shared)
                else:
                    shared.active -= 1
            finally:
                release()

    return call_in_bulkhead


def keyed_sync_driver(
    bulkhead: Bulkhead, fn: Callable[..., Any], key_of: Callable[..., Any]
) -> Callable[..., Any]:
    acquire, release = bulkhead.lock.acquire, bulkhead.lock.release
    entries, counts, limit = bulkhead.compartments.entries, bulkhead.counts, bulkhead.limit
    get, move_to_end = entries.get, entries.move_to_end
    enter, free = bulkhead.enter_slow_sync, bulkhead.free

    def call_in_bulkhead_per_key(*args: Any, **kwargs: Any) -> Any:
        key = key_of(*args, **kwargs)
        acquire()
        try:
            compartment = get(key)
            if compartment is not None and compartment.active < limit and not compartment.queue:
                move_to_end(key)
                compartment.active += 1
                counts.admitted += 1
                counts.active += 1
                if counts.active > counts.peak:
                    counts.peak = counts.active
            else:
                compartment = None  # a new key, or a full one: the slow path decides
        except TypeError:
            compartment = None  # an unhashable key: the slow path explains
        finally:
            release()
        if compartment is None:
            compartment = enter(None, key)
        try:
            return fn(*args, **kwargs)
        finally:
            acquire()
            try:
                if compartment.queue:
                    free(compartment)
                else:
                    compartment.active -= 1
                    counts.active -= 1
            finally:
                release()

    return call_in_bulkhead_per_key


def keyed_async_driver(
    bulkhead: Bulkhead, fn: Callable[..., Awaitable[Any]], key_of: Callable[..., Any]
) -> Callable[..., Awaitable[Any]]:
    acquire, release = bulkhead.lock.acquire, bulkhead.lock.release
    entries, counts, limit = bulkhead.compartments.entries, bulkhead.counts, bulkhead.limit
    get, move_to_end = entries.get, entries.move_to_end
    enter, free = bulkhead.enter_slow_async, bulkhead.free

    async def call_in_bulkhead_per_key(*args: Any, **kwargs: Any) -> Any:
        key = key_of(*args, **kwargs)
        acquire()
        try:
            compartment = get(key)
            if compartment is not None and compartment.active < limit and not compartment.queue:
                move_to_end(key)
                compartment.active += 1
                counts.admitted += 1
                counts.active += 1
                if counts.active > counts.peak:
                    counts.peak = counts.active
            else:
                compartment = None  # a new key, or a full one: the slow path decides
        except TypeError:
            compartment = None  # an unhashable key: the slow path explains
        finally:
            release()
        if compartment is None:
            compartment = await enter(None, key)
        try:
            return await fn(*args, **kwargs)
        finally:
            acquire()
            try:
                if compartment.queue:
                    free(compartment)
                else:
                    compartment.active -= 1
                    counts.active -= 1
            finally:
                release()

    return call_in_bulkhead_per_key
