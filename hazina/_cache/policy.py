"""Cache: remember what calls returned, for a while, in bounded memory, loading each once.

The hit path takes no lock (see ``_cache_store``); everything else (misses, loads,
stores, eviction, stats) runs under the policy's lock, which is never held while user
code runs: a load happens outside it, guarded by a :class:`~hazina._cache_flight.Flight`
so that concurrent misses of one key run the function once.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import threading
from collections.abc import Awaitable, Callable, Hashable
from time import monotonic
from types import CoroutineType
from typing import Any, TypeVar

from .._core.clock import is_system_clock
from .._core.conditions import when
from .._core.counters import Counter, new_counter, read_counter
from .._core.errors import safe_repr
from .._core.forks import fresh_lock, reset_after_fork
from .._core.hooks import SPANS
from .._core.host import Host
from .._core.policy import Policy
from .._core.validation import build_config
from .config import CacheConfig
from .drivers import async_driver, async_refreshing_driver, sync_driver, sync_refreshing_driver
from .expiry import NEVER, PRIORITIES, EntryOptions, ExpiresAt, Priority
from .flight import ABANDONED, ERROR, PENDING, VALUE, Flight
from .keys import KeyBuilder, custom_key, plain_key, typed_key, unhashable_argument
from .log import DEBUG, cache_logger, logger
from .records import CacheEvicted, CacheStats
from .store import Entry, Store

T = TypeVar("T")


# What _begin decided for a lookup that found no fresh entry on the lock-free path.
_HIT, _JOIN, _LEAD = "hit", "join", "lead"
_DESCRIBED = {_HIT: "hit", _JOIN: "waiting for the load in flight", _LEAD: "miss"}
#: What _stale_for answers when no stale value may be served.
_NO_STALE: Any = object()


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
        # With refresh_after or stale_if_error, an entry's value is a record
        # ``(value, refresh_at)`` and its deadline, sliding and cap in the store are
        # pushed back by ``stale``: it is fresh while ``deadline - stale > now`` and
        # kept (for a failing load to fall back on) until ``deadline``. The store then
        # needs no notion of staleness, and its purge drops an entry once it may no
        # longer be served even stale.
        self.stale: float = config.stale_if_error or 0.0
        self._refresh_after = config.refresh_after
        self.wraps: bool = config.refresh_after is not None or config.stale_if_error is not None
        self._is_stale_error = when(config.stale_on)
        # Refresh tasks, held so the event loop's weak references do not lose them.
        self._refresh_tasks: set[asyncio.Task[Any]] = set()
        #: The latest clock reading (hits store theirs without the lock). A hit reading
        #: the clock below it goes to the lock's path: the clock may have stepped back,
        #: which a fresh reading under the lock decides (see _locked_now).
        self.seen: float = -math.inf
        self.build_key: KeyBuilder = self._key_builder(config)
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

    def _key_builder(self, config: CacheConfig) -> KeyBuilder:
        """How a decorated call's arguments become this cache's key."""
        if config.key is not None:
            return custom_key(config.key)
        return typed_key if config.typed else plain_key

    def _apply_config(self, config: CacheConfig) -> None:
        # Entries keep the expiry they were stored with; a smaller max_size evicts at
        # once. Entries stored in another shape (with or without the record that
        # refresh_after and stale_if_error need) or under other keys are dropped.
        wraps = config.refresh_after is not None or config.stale_if_error is not None
        build_key = self._key_builder(config)
        evicted: list[Entry] = []
        with self._lock:
            old = self.config
            if wraps != self.wraps or (old.key, old.typed) != (config.key, config.typed):
                self.store.clear()
            self.store.max_size = config.max_size
            while len(self.store) > config.max_size:
                victim = self.store._evict()
                if victim is None:
                    break
                evicted.append(victim)
            self._evictions += len(evicted)
            self.default_entry_options = EntryOptions(
                ttl=config.ttl,
                sliding=config.sliding,
                expires_at=config.expires_at,
                priority=config.priority,
            )
            self.stale = config.stale_if_error or 0.0
            self._refresh_after = config.refresh_after
            self.wraps = wraps
            self._is_stale_error = when(config.stale_on)
            self.build_key = build_key
            self.config = config
        self._report(evicted, full=False)

    def _fresh_state(self) -> None:
        self._hits_base = read_counter(self.hits)
        self._misses_base = read_counter(self._misses)
        self._loads = 0
        self._load_errors = 0
        self._coalesced = 0
        self._evictions = 0
        self._expirations = 0
        self._refreshes = 0
        self._stale_served = 0
        self._warned_full = False
        # Waiters counted as coalesced before a reset() must not be un-counted after it.
        self._epoch += 1

    def _now(self) -> float:
        return monotonic() if self.real_time else self.clock.now()

    def _locked_now(self) -> float:
        """The clock, read under the lock; a step back counts as no time passing.

        Every entry's deadline moves back by the step, so entries keep the life they
        had left at the latest reading: leaving a freezegun block must neither keep
        entries stored inside it for decades nor expire everything at once.
        """
        now = self._now()
        if now < self.seen:
            # Hits store their readings without the lock: one may have stored a reading
            # taken after ours. A second reading, taken after we saw theirs, tells.
            now = self._now()
            if now < self.seen:
                self.store.shift(now - self.seen)
        self.seen = now
        return now

    # -- entries -------------------------------------------------------------------

    def get(self, key: Hashable, default: Any = None) -> Any:
        """The value cached under ``key``, or ``default`` if there is no fresh one."""
        entry = self._fresh(key)
        if entry is not None:
            return entry.value[0] if self.wraps else entry.value
        next(self._misses)
        if DEBUG.refresh():
            logger.debug("cache %r: miss for %r", self.name, key)
        return default

    def __contains__(self, key: object) -> bool:
        """Whether a fresh entry is cached under ``key``.

        A peek, not a read: no hit is counted and the entry's recency is unchanged.
        """
        entry = self.store.get(key)
        if entry is None:
            return False
        now = self._now()
        if now < self.seen:
            with self._lock:
                now = self._locked_now()
        return entry.deadline - self.stale > now

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
        if ttl is None and sliding is None and expires_at is None and priority is None:
            options = self.default_entry_options
        else:
            options = self._entry_options(ttl, sliding, expires_at, priority)
        if isinstance(value, CoroutineType):
            self._refuse_coroutine(value)
        # The helpers below written out where they are cheap: each call saved is a few
        # tenths of a microsecond a write.
        try:
            hash(key)
        except TypeError:
            self._check_hashable(key)
        real_time = self.real_time
        now = monotonic() if real_time else self.clock.now()
        entry = self.new_entry(key, value, options, now)
        with self._lock:
            # _locked_now(), when the clock has not stepped back.
            locked_now = monotonic() if real_time else self.clock.now()
            if locked_now < self.seen:
                self._locked_now()
            else:
                self.seen = locked_now
            # A load already in flight began before this value existed; it must not
            # overwrite it when it finishes.
            self._flights.pop(key, None)
            self._invalidations += 1
            stored, evicted, full = self._put(entry, now)
        if evicted or full:
            self._report(evicted, full)
        return stored

    def delete(self, key: Hashable) -> bool:
        """Remove the entry under ``key``; returns whether a fresh one was there."""
        self._check_hashable(key)
        with self._lock:
            self._flights.pop(key, None)  # a load in flight must not bring it back
            self._invalidations += 1
            entry = self.store.get(key)
            if entry is None or not self.store.remove(entry):
                return False
            if entry.deadline - self.stale <= self._locked_now():
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
            if not self.wraps:
                return entry.value  # type: ignore[no-any-return]
            value, refresh_at = entry.value
            if refresh_at <= self._now():
                self.refresh_sync(key, entry, factory, (), {}, options)
            return value  # type: ignore[no-any-return]
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
            if not self.wraps:
                return entry.value  # type: ignore[no-any-return]
            value, refresh_at = entry.value
            if refresh_at <= self._now():
                self.refresh_async(key, entry, factory, (), {}, options)
            return value  # type: ignore[no-any-return]
        return await self.load_async(key, factory, (), {}, options)  # type: ignore[no-any-return]

    # -- stats ---------------------------------------------------------------------

    def stats(self) -> CacheStats:
        DEBUG.refresh()
        with self._lock:
            self._expirations += self.store.purge(self._locked_now())
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
                refreshes=self._refreshes,
                stale_served=self._stale_served,
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
        # The plain hit path stays as it was for caches that neither refresh nor keep.
        return sync_refreshing_driver(self, fn) if self.wraps else sync_driver(self, fn)

    def _async_driver(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        return async_refreshing_driver(self, fn) if self.wraps else async_driver(self, fn)

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
                return self._settled(key, found)
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
                return self._settled(key, found)

    def _begin(self, key: Hashable, task: asyncio.Task[Any] | None, joined: int) -> tuple[str, Any]:
        """Under the lock: serve a fresh entry, join the key's load, or lead a new one.

        Logs nothing: a log handler is user code, which never runs under the lock.
        """
        if joined == self._epoch:
            self._coalesced -= 1  # its flight was abandoned; counted again below
        store = self.store
        # store.get(key), without the call a sharded store's get is.
        entry = store.gets[hash(key) & store.mask](key)
        if entry is not None:
            now = self._locked_now()
            deadline = entry.deadline
            if deadline - self.stale > now:
                self._touch(entry, now)
                return _HIT, entry.value[0] if self.wraps else entry.value
            if deadline <= now:  # else kept, stale, for the load to fall back on
                store.remove(entry)
                self._expirations += 1
        flight = self._flights.get(key)
        # A settled flight still registered was left behind by a key whose __eq__ or
        # __hash__ raised while its load was put away: replaced, never joined.
        stale = flight is not None and flight.outcome != PENDING
        if flight is not None and not stale and self.config.single_flight and flight.joinable(task):
            self._coalesced += 1
            return _JOIN, flight
        next(self._misses)
        self._loads += 1
        # Registered, so that a later set/delete/clear detaches it, unless another load
        # of the key is registered already (no single flight, or a recursive call):
        # replacing that one would keep its result out of the cache.
        new = Flight(task, self._epoch, self._invalidations)
        if flight is None or stale:
            self._flights[key] = new
        return _LEAD, new

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
            self._mark_load(key)
            value = fn(*args, **kwargs)
            if isinstance(value, CoroutineType):
                self._refuse_coroutine(value)
            # Expiry counts from when the value exists.
            now = monotonic() if self.real_time else self.clock.now()
            entry = self.new_entry(key, value, options, now)
            # Inside the try: if a signal's exception lands in it, the flight still settles.
            self._succeed(flight, entry, now, value)
        except BaseException as error:
            self._fail(key, flight, error)
            stale = self._stale_for(key, error)
            if stale is _NO_STALE:
                raise
            return stale
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
            self._mark_load(key)
            value = await fn(*args, **kwargs)
            if isinstance(value, CoroutineType):
                self._refuse_coroutine(value)
            now = monotonic() if self.real_time else self.clock.now()
            entry = self.new_entry(key, value, options, now)
            # Inside the try: if a signal's exception lands in it, the flight still settles.
            self._succeed(flight, entry, now, value)
        except BaseException as error:
            self._fail(key, flight, error)
            stale = self._stale_for(key, error)
            if stale is _NO_STALE:
                raise
            return stale
        return value

    def _mark_load(self, key: Hashable) -> None:
        """Tell an exporter's hook, if one is installed, that this caller loads ``key``."""
        mark = SPANS.cache_load  # read once: an uninstrument may unset it meanwhile
        if mark is not None:
            mark(self, key)

    def _log_step(self, step: str, key: Hashable) -> None:
        if DEBUG.refresh():
            logger.debug("cache %r: %s for %r", self.name, _DESCRIBED[step], key)

    def _succeed(self, flight: Flight, entry: Entry, now: float, value: Any) -> None:
        key = entry.key
        evicted: list[Entry] = []
        full = False
        try:
            with self._lock:
                # _locked_now(), when the clock has not stepped back.
                locked_now = monotonic() if self.real_time else self.clock.now()
                if locked_now < self.seen:
                    self._locked_now()
                else:
                    self.seen = locked_now
                if self._flights.get(key) is flight:
                    del self._flights[key]
                    _, evicted, full = self._put(entry, now)
                elif key not in self._flights and flight.invalidations == self._invalidations:
                    _, evicted, full = self._put(entry, now)
        except BaseException as error:
            # The key's own __eq__ or __hash__ raised: the value is not stored, and the
            # waiters get that error instead of waiting for ever.
            with self._lock:
                if flight.epoch == self._epoch:
                    self._load_errors += 1
            flight.settle(ERROR, error=error)
            raise
        flight.settle(VALUE, value)
        if evicted or full:
            self._report(evicted, full)

    def _fail(self, key: Hashable, flight: Flight, error: BaseException) -> None:
        with self._lock:
            # Not from before reset(), and once: an interrupted leader's clean-up may run
            # twice, or after its load settled.
            if flight.epoch == self._epoch and flight.outcome == PENDING and not flight.counted:
                flight.counted = True
                self._load_errors += 1
            # Settled below even if the key's __eq__/__hash__ raises here; _begin
            # replaces a settled flight it finds still registered.
            with contextlib.suppress(Exception):
                if self._flights.get(key) is flight:
                    del self._flights[key]
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

    # -- stale values and background refreshes -------------------------------------

    def new_entry(self, key: Hashable, value: Any, options: EntryOptions, now: float) -> Entry:
        """An entry holding ``value``, stored at ``now`` (not yet in the store)."""
        if options.sliding is None and options.expires_at is None and not self.wraps:
            # The usual entry (a ttl or none), built here: expiry() and the store's
            # new_entry() would be two calls more on every write.
            ttl, store = options.ttl, self.store
            index = hash(key) & store.mask
            touch = store.touches[index][options.rank] or store.ranked_touch(index, options.rank)
            return Entry(key, value, touch, NEVER if ttl is None else now + ttl, None)
        expiry = options.expiry(value, now)
        if self.wraps:
            refresh_after = self._refresh_after
            value = (value, NEVER if refresh_after is None else now + refresh_after)
            if self.stale:
                expiry = _kept_longer(expiry, self.stale)
        return self.store.new_entry(key, value, options.rank, expiry)

    def _stale_for(self, key: Hashable, error: BaseException) -> Any:
        """The stale value to answer a load that raised ``error`` with, or ``_NO_STALE``.

        Only errors (never a cancellation or an exit) matching ``stale_on``, and only
        while the entry is kept: never past ``stale_if_error`` after its expiry.
        """
        if not self.stale or not isinstance(error, Exception):
            return _NO_STALE
        entry = self.store.get(key)
        if entry is None or entry.deadline <= self._now() or not self._is_stale_error(error):
            return _NO_STALE
        with self._lock:
            self._stale_served += 1
        if DEBUG.refresh():
            logger.debug("cache %r: serving stale %r after %r", self.name, key, error)
        return entry.value[0]

    def _settled(self, key: Hashable, flight: Flight) -> Any:
        """What a caller that waited for ``flight`` gets: its value, a stale one, or its error."""
        if flight.outcome == ERROR and flight.error is not None:
            stale = self._stale_for(key, flight.error)
            if stale is not _NO_STALE:
                return stale
        return flight.reraise()

    def refresh_sync(
        self,
        key: Hashable,
        entry: Entry,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: EntryOptions,
    ) -> None:
        """Reload ``entry``'s value on a thread of its own, unless a load of ``key`` runs."""
        flight = self._begin_refresh(key, entry)
        if flight is None:
            return
        thread = threading.Thread(
            target=self._refreshed_sync,
            args=(key, flight, fn, args, kwargs, options),
            name=f"hazina-cache-refresh:{self.name}",
            daemon=True,  # an interpreter exiting does not wait for a refresh
        )
        try:
            thread.start()
        except Exception as error:  # no thread to be had: the entry simply ages on
            self._refresh_failed(key, flight, error)

    def refresh_async(
        self,
        key: Hashable,
        entry: Entry,
        fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: EntryOptions,
    ) -> None:
        """Reload ``entry``'s value in a task on the running loop, unless a load of ``key`` runs."""
        flight = self._begin_refresh(key, entry)
        if flight is None:
            return
        refresh = self._refreshed_async(key, flight, fn, args, kwargs, options)
        try:
            task = asyncio.get_running_loop().create_task(refresh)
        except Exception as error:  # a loop shutting down
            refresh.close()
            self._refresh_failed(key, flight, error)
            return
        # Waiters on the refresh's flight tell its cancellation apart by its task.
        flight.task = task
        self._refresh_tasks.add(task)
        task.add_done_callback(self._refresh_tasks.discard)

    def _begin_refresh(self, key: Hashable, entry: Entry) -> Flight | None:
        """Register a refresh of ``entry`` as the load of ``key``, if none runs and it is current.

        Registered like any load, so callers missing the key meanwhile wait for it, a
        second refresh is never started beside it, and set/delete/clear detach it: a
        refresh that finishes after them never stores its (older) value.
        """
        flights = self._flights
        if key in flights:  # lock-free first: every hit on an old entry comes here
            return None
        with self._lock:
            # The entry must still be the one found old: another refresh may have
            # replaced it since the caller looked it up.
            if key in flights or self.store.get(key) is not entry:
                return None
            self._loads += 1
            self._refreshes += 1
            flight = Flight(None, self._epoch, self._invalidations)
            flights[key] = flight
        return flight

    def _refreshed_sync(
        self,
        key: Hashable,
        flight: Flight,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: EntryOptions,
    ) -> None:
        """Run a background refresh: store its value, or count and log its failure."""
        flight.thread = threading.get_ident()  # the refresh's own, for joinable()
        try:
            value = fn(*args, **kwargs)
            self._refuse_coroutine(value)
            now = self._now()
            entry = self.new_entry(key, value, options, now)
        except Exception as error:
            self._refresh_failed(key, flight, error)
            return
        except BaseException as error:
            self._fail(key, flight, error)
            raise
        self._succeed(flight, entry, now, value)

    async def _refreshed_async(
        self,
        key: Hashable,
        flight: Flight,
        fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: EntryOptions,
    ) -> None:
        """Run a background refresh: store its value, or count and log its failure."""
        flight.thread = threading.get_ident()  # the refresh's own, for joinable()
        try:
            value = await fn(*args, **kwargs)
            self._refuse_coroutine(value)
            now = self._now()
            entry = self.new_entry(key, value, options, now)
        except Exception as error:
            self._refresh_failed(key, flight, error)
            return
        except BaseException as error:
            self._fail(key, flight, error)
            raise
        self._succeed(flight, entry, now, value)

    def _refresh_failed(self, key: Hashable, flight: Flight, error: Exception) -> None:
        """Count a failed refresh (in ``load_errors``) and log it; it is nobody's call's error.

        The entry's next refresh waits ``refresh_after`` again: a dependency that is down
        is then not called again on every hit of a busy key.
        """
        self._fail(key, flight, error)
        with self._lock:
            entry = self.store.get(key)
            if entry is not None and self._refresh_after is not None:
                value, refresh_at = entry.value
                now = self._now()
                if refresh_at <= now:
                    # Replaced whole: a lock-free reader unpacks one record or the other.
                    entry.value = (value, now + self._refresh_after)
        if cache_logger.isEnabledFor(logging.DEBUG):
            cache_logger.debug(
                "cache %r: background refresh of %r failed: %r",
                self.name,
                key,
                error,
                extra={"hazina_kind": self.kind, "hazina_name": self.name},
            )

    # -- helpers -------------------------------------------------------------------

    def _fresh(self, key: Hashable) -> Entry | None:
        """The fresh entry under ``key`` (counted as a hit), or ``None``; no lock taken."""
        try:
            entry = self.store.get(key)
        except TypeError:
            self._check_hashable(key)
            raise
        if entry is None:
            return None
        now = self._now()
        if now < self.seen:
            with self._lock:
                now = self._locked_now()
        if entry.deadline - self.stale > now:
            self.seen = now
            self._touch(entry, now)
            if DEBUG.on:
                logger.debug("cache %r: hit for %r", self.name, key)
            return entry
        if entry.deadline > now:
            return None  # stale, kept for a failing load to fall back on
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
        stale = self.stale
        if entry.deadline - stale <= now:
            # Expired before it was stored: nothing to keep, and nothing older either.
            old = store.get(entry.key)
            if old is not None:
                store.remove(old)
            return False, [], False
        if stale:
            old = store.get(entry.key)
            if old is not None and old.deadline - stale <= now:
                self._expirations += 1  # a stale entry kept until now, replaced

        stored, evicted, expired = store.put(entry, now)
        if evicted:
            self._evictions += len(evicted)
        if expired:
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
            raise TypeError(f"cache {self.name!r}: key {safe_repr(key)} is unhashable") from None

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


def _kept_longer(
    expiry: tuple[float, float | None, float], stale: float
) -> tuple[float, float | None, float]:
    """``(deadline, sliding, cap)`` pushed back by ``stale`` seconds (never-expiring stays so)."""
    deadline, sliding, cap = expiry
    # NEVER is compared by identity on the hit path: keep that very object.
    return (
        deadline if deadline is NEVER else deadline + stale,
        None if sliding is None else sliding + stale,
        cap if cap is NEVER else cap + stale,
    )
