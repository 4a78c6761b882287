"""The bulkhead's drivers: take a slot, run the call, hand the slot on.

An admitted call without a key costs two round trips of one lock (in and out) and a
few integer operations; anything else (a key, a full bulkhead, waiting in line) goes
through the policy's methods.

An exception from a signal handler (Ctrl-C, a SIGALRM timeout) lands between bytecodes,
after any call returns or as any Python function starts, and a slot it strands is lost
for good. So ``held`` is set in the same stretch as the slot is taken, with no call in
between, inside the ``try`` whose ``finally`` gives it back; the slow path returns
holding a slot or raises holding none (see :meth:`.Bulkhead.enter_slow_sync`). The
``finally`` hands the slot on with no call before it is done, and starts again if the
exception landed in its wait for the lock (``held`` says whether it got that far);
waking the waiter the slot went to is done again if an exception cut it short; the
exception is raised once the slot has changed hands. The lock is taken with
``acquire()``/``release()`` inside a ``try`` (a ``with`` block would be as safe and costs
about 110 ns more a round trip here): an exception landing just after ``acquire()``
returned, or just before ``release()``, releases the lock in the ``except`` if this
thread holds it, which only a re-entrant lock can tell; one that cut the wait in
``acquire()`` short finds it not held, and leaves another thread's hold alone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .compartments import Compartment, Waiter
    from .policy import Bulkhead


def sync_driver(bulkhead: Bulkhead, fn: Callable[..., Any]) -> Callable[..., Any]:
    """A plain function that calls ``fn`` within ``bulkhead``."""
    key_of = bulkhead.config.key
    if key_of is not None:
        return keyed_sync_driver(bulkhead, fn, key_of)
    acquire, release, owned = bulkhead.lock.acquire, bulkhead.lock.release, bulkhead.lock_owned
    shared, counts, limit = bulkhead.shared, bulkhead.counts, bulkhead.limit
    queue, enter, wake = bulkhead.shared.queue, bulkhead.enter_slow_sync, bulkhead.wake

    def call_in_bulkhead(*args: Any, **kwargs: Any) -> Any:
        held = False
        try:
            try:
                acquire()
                if shared.active < limit and not queue:
                    shared.active += 1
                    held = True
                    counts.admitted += 1
                    if shared.active > counts.peak:
                        counts.peak = shared.active
                release()
            except BaseException:
                if owned():
                    release()
                raise
            if not held:
                enter(shared, None)
                held = True
            return fn(*args, **kwargs)
        finally:
            woken: Waiter | None = None
            interrupted: BaseException | None = None
            while held:
                try:
                    acquire()
                    # Above the limit (it shrank while calls ran), no slot is handed on.
                    if queue and shared.active <= bulkhead.limit:
                        woken = queue[0]
                        del queue[0]
                        woken.granted = True
                        counts.admitted += 1
                    else:
                        shared.active -= 1
                    held = False
                    release()
                except BaseException as error:  # in the wait for the lock, or just after
                    if owned():
                        release()
                    interrupted = error
            if woken is not None:
                try:
                    wake(woken)
                except BaseException as error:
                    interrupted = error
                    wake(woken)
            if interrupted is not None:
                raise interrupted

    return call_in_bulkhead


def async_driver(
    bulkhead: Bulkhead, fn: Callable[..., Awaitable[Any]]
) -> Callable[..., Awaitable[Any]]:
    """An ``async def`` function that awaits ``fn`` within ``bulkhead``."""
    key_of = bulkhead.config.key
    if key_of is not None:
        return keyed_async_driver(bulkhead, fn, key_of)
    acquire, release, owned = bulkhead.lock.acquire, bulkhead.lock.release, bulkhead.lock_owned
    shared, counts, limit = bulkhead.shared, bulkhead.counts, bulkhead.limit
    queue, enter, wake = bulkhead.shared.queue, bulkhead.enter_slow_async, bulkhead.wake

    async def call_in_bulkhead(*args: Any, **kwargs: Any) -> Any:
        held = False
        try:
            try:
                acquire()
                if shared.active < limit and not queue:
                    shared.active += 1
                    held = True
                    counts.admitted += 1
                    if shared.active > counts.peak:
                        counts.peak = shared.active
                release()
            except BaseException:
                if owned():
                    release()
                raise
            if not held:
                await enter(shared, None)
                held = True
            return await fn(*args, **kwargs)
        finally:
            woken: Waiter | None = None
            interrupted: BaseException | None = None
            while held:
                try:
                    acquire()
                    # Above the limit (it shrank while calls ran), no slot is handed on.
                    if queue and shared.active <= bulkhead.limit:
                        woken = queue[0]
                        del queue[0]
                        woken.granted = True
                        counts.admitted += 1
                    else:
                        shared.active -= 1
                    held = False
                    release()
                except BaseException as error:  # in the wait for the lock, or just after
                    if owned():
                        release()
                    interrupted = error
            if woken is not None:
                try:
                    wake(woken)
                except BaseException as error:
                    interrupted = error
                    wake(woken)
            if interrupted is not None:
                raise interrupted

    return call_in_bulkhead


def keyed_sync_driver(
    bulkhead: Bulkhead, fn: Callable[..., Any], key_of: Callable[..., Any]
) -> Callable[..., Any]:
    acquire, release, owned = bulkhead.lock.acquire, bulkhead.lock.release, bulkhead.lock_owned
    counts, limit = bulkhead.counts, bulkhead.limit
    entries = bulkhead.compartments.entries
    get, move_to_end = entries.get, entries.move_to_end
    enter, wake = bulkhead.enter_slow_sync, bulkhead.wake

    def call_in_bulkhead_per_key(*args: Any, **kwargs: Any) -> Any:
        key = key_of(*args, **kwargs)
        held: Compartment | None = None
        try:
            try:
                acquire()
                compartment = get(key)
                if compartment is not None and compartment.active < limit and not compartment.queue:
                    move_to_end(key)
                    compartment.active += 1
                    held = compartment
                    counts.admitted += 1
                    counts.active += 1
                    if counts.active > counts.peak:
                        counts.peak = counts.active
                release()
            except BaseException as error:
                if owned():
                    release()
                if not isinstance(error, TypeError):
                    raise  # a TypeError is an unhashable key: the slow path explains
            if held is None:  # a new key, or a full one: the slow path decides
                held = enter(None, key)
            return fn(*args, **kwargs)
        finally:
            woken: Waiter | None = None
            interrupted: BaseException | None = None
            while held is not None:
                try:
                    acquire()
                    queue = held.queue
                    # Above the limit (it shrank while calls ran), no slot is handed on.
                    if queue and held.active <= bulkhead.limit:
                        woken = queue[0]
                        del queue[0]
                        woken.granted = True
                        counts.admitted += 1
                    else:
                        held.active -= 1
                        counts.active -= 1
                    held = None
                    release()
                except BaseException as error:  # in the wait for the lock, or just after
                    if owned():
                        release()
                    interrupted = error
            if woken is not None:
                try:
                    wake(woken)
                except BaseException as error:
                    interrupted = error
                    wake(woken)
            if interrupted is not None:
                raise interrupted

    return call_in_bulkhead_per_key


def keyed_async_driver(
    bulkhead: Bulkhead, fn: Callable[..., Awaitable[Any]], key_of: Callable[..., Any]
) -> Callable[..., Awaitable[Any]]:
    acquire, release, owned = bulkhead.lock.acquire, bulkhead.lock.release, bulkhead.lock_owned
    counts, limit = bulkhead.counts, bulkhead.limit
    entries = bulkhead.compartments.entries
    get, move_to_end = entries.get, entries.move_to_end
    enter, wake = bulkhead.enter_slow_async, bulkhead.wake

    async def call_in_bulkhead_per_key(*args: Any, **kwargs: Any) -> Any:
        key = key_of(*args, **kwargs)
        held: Compartment | None = None
        try:
            try:
                acquire()
                compartment = get(key)
                if compartment is not None and compartment.active < limit and not compartment.queue:
                    move_to_end(key)
                    compartment.active += 1
                    held = compartment
                    counts.admitted += 1
                    counts.active += 1
                    if counts.active > counts.peak:
                        counts.peak = counts.active
                release()
            except BaseException as error:
                if owned():
                    release()
                if not isinstance(error, TypeError):
                    raise  # a TypeError is an unhashable key: the slow path explains
            if held is None:  # a new key, or a full one: the slow path decides
                held = await enter(None, key)
            return await fn(*args, **kwargs)
        finally:
            woken: Waiter | None = None
            interrupted: BaseException | None = None
            while held is not None:
                try:
                    acquire()
                    queue = held.queue
                    # Above the limit (it shrank while calls ran), no slot is handed on.
                    if queue and held.active <= bulkhead.limit:
                        woken = queue[0]
                        del queue[0]
                        woken.granted = True
                        counts.admitted += 1
                    else:
                        held.active -= 1
                        counts.active -= 1
                    held = None
                    release()
                except BaseException as error:  # in the wait for the lock, or just after
                    if owned():
                        release()
                    interrupted = error
            if woken is not None:
                try:
                    wake(woken)
                except BaseException as error:
                    interrupted = error
                    wake(woken)
            if interrupted is not None:
                raise interrupted

    return call_in_bulkhead_per_key
