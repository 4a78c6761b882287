"""Cache: remember what calls returned, for a while, in bounded memory, loading each once.

The hit path takes no lock (see ``_cache_store``); everything else (misses, loads,
stores, eviction, stats) runs under the policy's lock, which is never held while user
code runs: a load happens outside it, guarded by a :class:`~hazina._cache_flight.Flight`
so that concurrent misses of one key run the function once.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Awaitable, Callable, Hashable
from time import monotonic
from typing import Any, TypeVar

from .._core.clock import is_system_clock
from .._core.counters import Counter, new_counter, read_counter
from .._core.forks import fresh_lock, reset_after_fork
from .._core.host import Host
from .._core.policy import Policy
from .._core.validation import build_config
from .config import CacheConfig
from .drivers import async_driver, sync_driver
from .expiry import PRIORITIES, EntryOptions, ExpiresAt, Priority
from .flight import ABANDONED, ERROR, PENDING, VALUE, Flight
from .keys import KeyBuilder, custom_key, plain_key, typed_key, unhashable_argument
from .log import DEBUG, logger
from .records import CacheEvicted, CacheStats
from .store import Entry, Store

T = TypeVar("T")


# What _begin decided for a lookup that found no fresh entry on the lock-free path.
_HIT, _JOIN, _LEAD = "hit", "join", "lead"
_DESCRIBED = {_HIT: "hit", _JOIN: "waiting for the load in flight", _LEAD: "miss"}


class Cache(Policy[CacheConfig, CacheStats]):
    """A named cache; get one from ``registry.cache(name, ...)``.

    Decorating with :func:`hazina.cached` caches a function's results by its
    arguments; the methods below read and write entries directly.
    """

    kind = "cache"
    config_class = CacheConfig

    def __init__(self, name: str, config: CacheConfig, host: Host) -> None:
        super().__init__(name, config, host)
        self._lock = threading.Lock()
        self.store: Store = Store(config.max_size)
        # The load in flight for each key; also how a load learns that the key was
        # set, deleted or cleared meanwhile (its flight is gone), so its older result
        # is handed to its callers but not stored.
        self._flights: dict[Hashable, Flight] = {}
        # Bumped by set/delete/clear/reset: a load that is not the key's registered
        # flight (overlapping, without single flight) stores only if none happened.
        self._invalidations = 0
        self.default_entry_options: EntryOptions = EntryOptions(
            ttl=config.ttl,
            sliding=config.sliding,
            expires_at=config.expires_at,
            priority=config.priority,
        )
        self.real_time: bool = is_system_clock(self.clock)
        self.build_key: KeyBuilder = (
            custom_key(config.key)
            if config.key is not None
            else typed_key
            if config.typed
            else plain_key
        )
        # Hits and misses are counted without the lock (the hit path has none).
        self.hits: Counter = new_counter()
        self._misses = new_counter()
        self._epoch = 0
        self._fresh_state()
        reset_after_fork(self)

    def _after_fork_in_child(self) -> None:
        fresh_lock(self._lock)
        # The parent's loads ran in threads the child does not have: nobody would ever
        # settle them, so the next miss of each key leads a load of its own.
        self._flights.clear()

    def _fresh_state(self) -> None:
        self._hits_base = read_counter(self.hits)
        self._misses_base = read_counter(self._misses)
        self._loads = 0
        self._load_errors = 0
        self._coalesced = 0
        self._evictions = 0
        self._expirations = 0
        self._warned_full = False
        # Waiters counted as coalesced before a reset() must not be un-counted after it.
        self._epoch += 1

    def _now(self) -> float:
        return monotonic() if self.real_time else self.clock.now()

    # -- entries -------------------------------------------------------------------

    def get(self, key: Hashable, default: Any = None) -> Any:
        """The value cached under ``key``, or ``default`` if there is no fresh one."""
        entry = self._fresh(key)
        if entry is not None:
            return entry.value
        next(self._misses)
        if DEBUG.refresh():
            logger.debug("cache %r: miss for %r", self.name, key)
        return default

    def __contains__(self, key: object) -> bool:
        """Whether a fresh entry is cached under ``key``.

        A peek, not a read: no hit is counted and the entry's recency is unchanged.
        """
        entry = self.store.entries.get(key)
        return entry is not None and entry.deadline > self._now()

    def set(
        self,
        key: Hashable,
        value: Any,
        *,
        ttl: float | None = None,
        sliding: float | None = None,
        expires_at: ExpiresAt | None = None,
        priority: Priority | None = None,
    ) -> bool:
        """Store ``value`` under ``key``; options left ``None`` take the policy's.

        Returns whether it was stored: not if it has already expired, nor when the
        cache is full of ``never_remove`` entries.
        """
        options = self._entry_options(ttl, sliding, expires_at, priority)
        self._refuse_coroutine(value)
        self._check_hashable(key)
        now = self._now()
        entry = self.store.new_entry(key, value, options.rank, options.expiry(value, now))
        with self._lock:
            # A load already in flight began before this value existed; it must not
            # overwrite it when it finishes.
            self._flights.pop(key, None)
            self._invalidations += 1
            stored, evicted, full = self._put(entry, now)
        self._report(evicted, full)
        return stored

    def delete(self, key: Hashable) -> bool:
        """Remove the entry under ``key``; returns whether a fresh one was there."""
        self._check_hashable(key)
        with self._lock:
            self._flights.pop(key, None)  # a load in flight must not bring it back
            self._invalidations += 1
            entry = self.store.entries.get(key)
            if entry is None or not self.store.remove(entry):
                return False
            if entry.deadline <= self._now():
                self._expirations += 1
                return False
            return True

    def clear(self) -> None:
        """Remove every entry; loads in flight still answer their callers, unstored."""
        with self._lock:
            self.store.clear()
            self._flights.clear()
            self._invalidations += 1

    def get_or_set(
        self,
        key: Hashable,
        factory: Callable[[], T],
        *,
        ttl: float | None = None,
        sliding: float | None = None,
        expires_at: ExpiresAt | None = None,
        priority: Priority | None = None,
    ) -> T:
        """The value under ``key``; if none, ``factory()``'s result, stored.

        Concurrent callers missing the same key wait for one ``factory()`` call.
        """
        options = self._entry_options(ttl, sliding, expires_at, priority)
        entry = self._fresh(key)
        if entry is not None:
            return entry.value  # type: ignore[no-any-return]
        return self.load_sync(key, factory, (), {}, options)  # type: ignore[no-any-return]

    async def aget_or_set(
        self,
        key: Hashable,
        factory: Callable[[], Awaitable[T]],
        *,
        ttl: float | None = None,
        sliding: float | None = None,
        expires_at: ExpiresAt | None = None,
        priority: Priority | None = None,
    ) -> T:
        """The value under ``key``; if none, the awaited ``factory()``'s result, stored.

        Concurrent callers (tasks or threads) missing the same key wait for one load.
        """
        options = self._entry_options(ttl, sliding, expires_at, priority)
        entry = self._fresh(key)
        if entry is not None:
            return entry.value  # type: ignore[no-any-return]
        return await self.load_async(key, factory, (), {}, options)  # type: ignore[no-any-return]

    # -- stats ---------------------------------------------------------------------

    def stats(self) -> CacheStats:
        DEBUG.refresh()
        with self._lock:
            self._expirations += self.store.purge(self._now())
            hits = read_counter(self.hits) - self._hits_base
            misses = read_counter(self._misses) - self._misses_base
            return CacheStats(
                hits=hits,
                misses=misses,
                hit_rate=hits / (hits + misses) if hits + misses else 0.0,
                loads=self._loads,
                load_errors=self._load_errors,
                coalesced=self._coalesced,
                evictions=self._evictions,
                expirations=self._expirations,
                size=len(self.store),
            )

    def reset(self) -> None:
        """Empty, with counters at zero; configuration kept."""
        with self._lock:
            self.store.clear()
            self._flights.clear()
            self._invalidations += 1
            self._fresh_state()

    # -- drivers -------------------------------------------------------------------
    def _sync_driver(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        return sync_driver(self, fn)

    def _async_driver(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        return async_driver(self, fn)

    def key_of_call(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Hashable:
        """The key a call of ``fn`` with these arguments uses (for ``cache_invalidate``)."""
        key = self.build_key(args, kwargs)
        try:
            hash(key)
        except TypeError as error:
            raise self.explain_unhashable(fn, args, kwargs, error) from None
        return key

    # -- loads (slow path) ---------------------------------------------------------

    def load_sync(
        self,
        key: Hashable,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: EntryOptions,
    ) -> Any:
        joined = 0  # the epoch in which this call was counted as coalesced, if it was
        while True:
            step = None
            try:
                with self._lock:
                    step, found = self._begin(key, None, joined)
                    joined = self._epoch if step is _JOIN else 0
                if step is _LEAD:
                    return self._lead_sync(key, found, fn, args, kwargs, options)
            except BaseException as error:
                # Interrupted (a signal's exception) between registering a load and the
                # leader's own `try`: nobody else would ever settle it.
                if step is _LEAD:
                    self._fail(key, found, error)
                raise
            self._log_step(step, key)
            if step is _HIT:
                return found
            found.wait()
            if found.outcome != ABANDONED:
                return found.reraise()
            # The leader never finished (interrupted): look again, maybe lead.

    async def load_async(
        self,
        key: Hashable,
        fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: EntryOptions,
    ) -> Any:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        joined = 0
        while True:
            step = None
            try:
                with self._lock:
                    step, found = self._begin(key, task, joined)
                    joined = self._epoch if step is _JOIN else 0
                    if step is _JOIN:
                        waiter = found.add_async_waiter(loop)
                if step is _LEAD:
                    return await self._lead_async(key, found, fn, args, kwargs, options)
            except BaseException as error:
                if step is _LEAD:
                    self._fail(key, found, error)
                raise
            self._log_step(step, key)
            if step is _HIT:
                return found
            # Cancelling this await cancels this caller's own future only.
            await waiter
            if found.outcome != ABANDONED:
                return found.reraise()

    def _begin(self, key: Hashable, task: asyncio.Task[Any] | None, joined: int) -> tuple[str, Any]:
        """Under the lock: serve a fresh entry, join the key's load, or lead a new one.

        Logs nothing: a log handler is user code, which never runs under the lock.
        """
        if joined == self._epoch:
            self._coalesced -= 1  # its flight was abandoned; counted again below
        store = self.store
        entry = store.entries.get(key)
        if entry is not None:
            now = self._now()
            if entry.deadline > now:
                self._touch(entry, now)
                return _HIT, entry.value
            store.remove(entry)
            self._expirations += 1
        flight = self._flights.get(key)
        if flight is not None and self.config.single_flight and flight.joinable(task):
            self._coalesced += 1
            return _JOIN, flight
        next(self._misses)
        self._loads += 1
        # Registered, so that a later set/delete/clear detaches it, unless another load
        # of the key is registered already (no single flight, or a recursive call):
        # replacing that one would keep its result out of the cache.
        flight = Flight(task, self._epoch, self._invalidations)
        flights = self._flights
        # Not setdefault(): after a call a signal's exception may land, and it must not
        # find the flight registered before the caller knows it leads.
        if key not in flights:
            flights[key] = flight
        return _LEAD, flight

    def _lead_sync(
        self,
        key: Hashable,
        flight: Flight,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: EntryOptions,
    ) -> Any:
        try:
            # Inside the try: a log handler is user code, and if it raised before the
            # load settled, the key would stay locked for everyone after.
            self._log_step(_LEAD, key)
            value = fn(*args, **kwargs)
            self._refuse_coroutine(value)
            now = self._now()  # expiry counts from when the value exists
            entry = self.store.new_entry(key, value, options.rank, options.expiry(value, now))
            # Inside the try: if a signal's exception lands in it, the flight still settles.
            self._succeed(flight, entry, now)
        except BaseException as error:
            self._fail(key, flight, error)
            raise
        return value

    async def _lead_async(
        self,
        key: Hashable,
        flight: Flight,
        fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: EntryOptions,
    ) -> Any:
        try:
            self._log_step(_LEAD, key)
            value = await fn(*args, **kwargs)
            self._refuse_coroutine(value)
            now = self._now()
            entry = self.store.new_entry(key, value, options.rank, options.expiry(value, now))
            # Inside the try: if a signal's exception lands in it, the flight still settles.
            self._succeed(flight, entry, now)
        except BaseException as error:
            self._fail(key, flight, error)
            raise
        return value

    def _log_step(self, step: str, key: Hashable) -> None:
        if DEBUG.refresh():
            logger.debug("cache %r: %s for %r", self.name, _DESCRIBED[step], key)

    def _succeed(self, flight: Flight, entry: Entry, now: float) -> None:
        key = entry.key
        evicted: list[Entry] = []
        full = False
        with self._lock:
            if self._flights.get(key) is flight:
                del self._flights[key]
                _, evicted, full = self._put(entry, now)
            elif key not in self._flights and flight.invalidations == self._invalidations:
                _, evicted, full = self._put(entry, now)
        flight.settle(VALUE, entry.value)
        self._report(evicted, full)

    def _fail(self, key: Hashable, flight: Flight, error: BaseException) -> None:
        with self._lock:
            if self._flights.get(key) is flight:
                del self._flights[key]
            # Not from before reset(), and once: an interrupted leader's clean-up may run
            # twice, or after its load settled.
            if flight.epoch == self._epoch and flight.outcome == PENDING and not flight.counted:
                flight.counted = True
                self._load_errors += 1
        # Errors are shared with the waiters, never cached. The leader's own
        # cancellation and interpreter exits are its own business: the waiters take
        # over. A CancelledError the load itself raised (an inner task it awaited was
        # cancelled) is the load's outcome, like any error.
        leader_stopped = not isinstance(error, Exception) and not (
            isinstance(error, asyncio.CancelledError)
            and flight.task is not None
            and not flight.task.cancelling()
        )
        if leader_stopped:
            flight.settle(ABANDONED)
        else:
            flight.settle(ERROR, error=error)

    # -- helpers -------------------------------------------------------------------

    def _fresh(self, key: Hashable) -> Entry | None:
        """The fresh entry under ``key`` (counted as a hit), or ``None``; no lock taken."""
        try:
            entry = self.store.entries.get(key)
        except TypeError:
            self._check_hashable(key)
            raise
        if entry is None:
            return None
        now = self._now()
        if entry.deadline > now:
            self._touch(entry, now)
            if DEBUG.on:
                logger.debug("cache %r: hit for %r", self.name, key)
            return entry
        with self._lock:
            if self.store.remove(entry):
                self._expirations += 1
        return None

    def _touch(self, entry: Entry, now: float) -> None:
        """Count a hit on ``entry`` and mark it recently used."""
        try:  # noqa: SIM105 - as cheap as in the drivers
            entry.touch(entry.key)
        except KeyError:
            pass  # removed meanwhile
        if entry.sliding is not None:
            entry.slide(now)
        next(self.hits)

    def _put(self, entry: Entry, now: float) -> tuple[bool, list[Entry], bool]:
        """Under the lock: store ``entry``.

        Returns whether it was stored, the entries evicted for it, and whether it was
        refused for want of room (everything left is ``never_remove``).
        """
        store = self.store
        if entry.deadline <= now:
            # Expired before it was stored: nothing to keep, and nothing older either.
            old = store.entries.get(entry.key)
            if old is not None:
                store.remove(old)
            return False, [], False
        stored, evicted, expired = store.put(entry, now)
        self._evictions += len(evicted)
        self._expirations += expired
        full = not stored and not self._warned_full
        if full:
            self._warned_full = True
        return stored, evicted, full

    def _report(self, evicted: list[Entry], full: bool) -> None:
        """Outside the lock: tell listeners about evictions, and the log about a full cache."""
        for entry in evicted:
            self.emit(CacheEvicted(self.name, entry.key, PRIORITIES[self.store.rank_of(entry)]))
        if full:
            logger.warning(
                "cache %r is full of never_remove entries (max_size=%d): new values are "
                "returned to their callers but not stored (logged once)",
                self.name,
                self.config.max_size,
            )

    def _entry_options(
        self,
        ttl: float | None,
        sliding: float | None,
        expires_at: ExpiresAt | None,
        priority: Priority | None,
    ) -> EntryOptions:
        if ttl is None and sliding is None and expires_at is None and priority is None:
            return self.default_entry_options
        config = self.config
        return build_config(
            self.kind,
            self.name,
            EntryOptions,
            {
                "ttl": config.ttl if ttl is None else ttl,
                "sliding": config.sliding if sliding is None else sliding,
                "expires_at": config.expires_at if expires_at is None else expires_at,
                "priority": config.priority if priority is None else priority,
            },
        )

    def _refuse_coroutine(self, value: object) -> None:
        if inspect.iscoroutine(value):
            value.close()  # never awaited, and never will be: say so quietly
            raise TypeError(
                f"cache {self.name!r}: refusing to cache a coroutine object, which can be "
                f"awaited only once; decorate an `async def` function (its awaited value is "
                f"cached), or await the value before storing it"
            )

    def _check_hashable(self, key: object) -> None:
        try:
            hash(key)
        except TypeError:
            raise TypeError(f"cache {self.name!r}: key {key!r} is unhashable") from None

    def explain_unhashable(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        error: TypeError,
    ) -> TypeError:
        """The argument to blame for ``error``, or ``error`` itself if every one hashes
        (it then came from some key's own ``__eq__`` or ``__hash__``)."""
        explained = unhashable_argument(self.name, fn, args, kwargs, self.config.key is not None)
        return error if explained is None else explained
