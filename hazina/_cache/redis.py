"""A cache whose entries live in Redis: one cache for every process of a fleet.

Each entry is a hash under a per-key hash tag (``redis.lua`` beside this module holds
every operation on it). A hit is one round trip: the script reads the entry, checks its
deadline against the script's time and, for a sliding entry, pushes the deadline back in
the same call. A miss takes a lease in that same round trip, so one process of the
fleet loads the key while the others wait for its value.

Waiting across processes polls: Redis would notify a blocked client (``BLPOP``), but
only over a connection held for the whole wait, which the backend's per-command
``timeout`` (the bound that keeps a dead Redis from holding callers) rules out. The
polls back off from 2 ms to 100 ms, jittered, so a waiter costs at most ~10 cheap round
trips a second and learns of the value within ~100 ms of its store. A waiter gives up
after ``lease`` seconds (the lease holder may have died) and loads the key itself. Inside
one process, callers missing the same key share one flight, as in memory: only one of
them talks to the fleet.

``clear()`` is O(1): entry names carry a generation, a random token kept in a
policy-wide key; clearing replaces the token, and the old entries are never read again
(their TTLs collect them). Reading the generation in the same script as an entry would
touch two Cluster slots, so each process re-reads it at most every ``sync_interval``
(a backend option): another process's ``clear()`` reaches this one within that time.

While Redis does not answer, ``on_backend_error`` decides: ``"local"`` serves from the
in-memory cache this class inherits (emptied when Redis answers again), ``"allow"``
calls through and stores nothing, ``"deny"`` raises :class:`~hazina.BackendUnavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import random
import threading
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from .._core.errors import BackendUnavailable, ConfigurationError
from .._core.host import Host
from .._core.switches import DISABLED
from .._redis.link import BackendLink, SharedPolicy
from .._redis.scripts import Script, Unreachable
from .config import CacheConfig
from .expiry import EntryOptions, ExpiresAt, Priority, _epoch_seconds
from .flight import ABANDONED, ERROR, VALUE, Flight
from .keys import _KEYWORDS, KeyBuilder, plain_key
from .log import cache_logger
from .policy import _NO_STALE, Cache
from .records import CacheStats
from .serializers import SerializerProtocol, serializer_for, serializer_name

if TYPE_CHECKING:
    from .._redis.backend import RedisBackend

T = TypeVar("T")
logger = logging.getLogger("hazina.redis")

SCRIPT = Script(__package__, "redis.lua")
#: How long the generation outlives the last process that read it (then a new one is
#: drawn; entries of the old one are never read again, whatever their TTL).
GENERATION_TTL_MS = 7 * 24 * 3600 * 1000
#: What the entry script answers.
MISS, HIT, EXPIRED, LEASED, HELD = 0, 1, -1, 2, 3
#: A stored value the serializer cannot read: overwritten by a fresh load.
UNREADABLE = 4
FIRST_POLL, MAX_POLL = 0.002, 0.1
# Time is real for the waits, whatever the registry's clock: the other process loads
# in real time, and the lease expires in Redis's.
sleep, asleep = time.sleep, asyncio.sleep
_UNDECODABLE = object()
_KEYWORD_MARKER = _KEYWORDS[0]


def _token() -> str:
    return os.urandom(9).hex()


@attrs.frozen
class _SharedShape:
    """What of a cache's configuration shapes its shared entries, comparable across processes."""

    ttl: float | None
    sliding: float | None
    expires_at: object
    typed: bool
    serializer: str
    lease: float
    refresh_after: float | None
    stale_if_error: float | None


def _shape(config: CacheConfig) -> _SharedShape:
    expires_at: object = config.expires_at
    if expires_at is not None and not callable(expires_at):
        expires_at = _epoch_seconds(expires_at)  # a datetime is no JSON
    return _SharedShape(
        config.ttl,
        config.sliding,
        expires_at,
        config.typed,
        serializer_name(config.serializer),
        config.lease,
        config.refresh_after,
        config.stale_if_error,
    )


def _check_config(name: str, config: CacheConfig) -> None:
    if config.ttl is None and config.expires_at is None:
        raise ConfigurationError(
            f"cache {name!r}: on Redis every entry needs an expiry; pass ttl= or expires_at="
        )
    if config.max_size != 1024:
        raise ConfigurationError(
            f"cache {name!r}: max_size does not apply on Redis (its maxmemory policy "
            f"evicts), got {config.max_size!r}; leave it out"
        )
    if config.priority != "normal":
        raise ConfigurationError(
            f"cache {name!r}: priority does not apply on Redis (its maxmemory policy "
            f"evicts), got {config.priority!r}; leave it out"
        )


def _wire(key: Hashable) -> tuple[str, Hashable, Hashable]:
    """``key`` as something Redis keys encode, the keyword marker kept unforgeable.

    A call key with keyword arguments holds a private marker (see ``keys.py``); it
    becomes a tag no ``get``/``set`` key can produce, as every other key is tagged "p".
    """
    if type(key) is tuple:
        for index, part in enumerate(key):
            if part is _KEYWORD_MARKER:
                return ("k", key[:index], key[index + 1 :])
    return ("p", key, None)


class _ThreadSide:
    """What a thread does differently from a task: it blocks on a flight."""

    def task(self) -> asyncio.Task[Any] | None:
        return None

    def waiter(self, flight: Flight) -> asyncio.Future[None] | None:
        return None

    def join_sync(self, flight: Flight, waiter: asyncio.Future[None] | None) -> None:
        flight.wait()


class _TaskSide:
    """What a task does differently from a thread: it awaits a future of its own."""

    def task(self) -> asyncio.Task[Any] | None:
        return asyncio.current_task()

    def waiter(self, flight: Flight) -> asyncio.Future[None] | None:
        return flight.add_async_waiter(asyncio.get_running_loop())

    async def join_async(self, flight: Flight, waiter: asyncio.Future[None] | None) -> None:
        assert waiter is not None
        # Cancelling this await cancels this caller's own future only.
        await waiter


sync_side, async_side = _ThreadSide(), _TaskSide()

# What _begin_fleet decided.
_LEAD, _JOIN, _POLL = "lead", "join", "poll"


class RedisCache(SharedPolicy, Cache):
    """A cache shared through Redis; made by the registry for ``backend=``."""

    def __init__(self, name: str, config: CacheConfig, host: Host, backend: RedisBackend) -> None:
        _check_config(name, config)
        # The inherited in-memory cache is the stand-in while Redis is down.
        super().__init__(name, config, host)
        self.backend = backend
        self.link = BackendLink(backend, self.kind, name, config, host.clock, shape=_shape)
        self._use(config)
        self._ran_locally = False
        self._generation_keys = [self.link.keys.policy("gen")]
        self._generation: str | None = None
        self._generation_due = 0.0
        # In-process flights by entry name (1 and True are one dict key, not one entry).
        self._fleet_flights: dict[str, Flight] = {}

    def _key_builder(self, config: CacheConfig) -> KeyBuilder:
        if config.typed:
            # The Redis encoding keeps types apart already (and has no place for types).
            return plain_key
        return super()._key_builder(config)

    def _use(self, config: CacheConfig) -> None:
        self.serializer: SerializerProtocol = serializer_for(config.serializer, self.name)
        self._on_error = config.on_backend_error
        self._lease_ms = max(1, math.ceil(config.lease * 1000))

    def _check_change(
        self, given: Mapping[str, Any], changes: Mapping[str, Any], config: CacheConfig
    ) -> None:
        _check_config(self.name, config)
        super()._check_change(given, changes, config)

    def _apply_config(self, config: CacheConfig) -> None:
        # Entries in Redis keep the expiry they were stored with; ones written by another
        # serializer read as misses and are loaded anew.
        super()._apply_config(config)
        self._use(config)

    # -- names ---------------------------------------------------------------------------

    def _base(self, key: Hashable) -> str:
        """The per-key part of the names of ``key``'s entry and lease (no generation yet)."""
        try:
            return self.link.keys.of(_wire(key), "")
        except TypeError as error:
            raise TypeError(f"cache {self.name!r}: {error}") from None

    def _names_sync(self, base: str) -> list[str]:
        generation = self._generation
        if generation is None or self._now() >= self._generation_due:
            answer = self.link.run(SCRIPT, self._generation_keys, self._generation_args(""))
            generation = self._adopt(answer)
        return [f"{base}v:{generation}", f"{base}l:{generation}"]

    async def _names_async(self, base: str) -> list[str]:
        generation = self._generation
        if generation is None or self._now() >= self._generation_due:
            answer = await self.link.arun(SCRIPT, self._generation_keys, self._generation_args(""))
            generation = self._adopt(answer)
        return [f"{base}v:{generation}", f"{base}l:{generation}"]

    def _generation_args(self, mode: str) -> list[object]:
        return ["gen", "", _token(), GENERATION_TTL_MS, mode]

    def _adopt(self, answer: bytes | str) -> str:
        generation = answer.decode() if isinstance(answer, bytes) else answer
        self._generation = generation
        self._generation_due = self._now() + self.backend.sync_interval
        return generation

    # -- values ------------------------------------------------------------------------------

    def _encode(self, value: object) -> bytes:
        try:
            payload = self.serializer.dumps(value)
        except Exception as error:
            if isinstance(error, TypeError) and repr(self.name) in str(error):
                raise
            raise TypeError(
                f"cache {self.name!r}: the serializer refused a {type(value).__qualname__}: {error}"
            ) from error
        if not isinstance(payload, bytes):
            raise TypeError(
                f"cache {self.name!r}: the serializer's dumps() returned a "
                f"{type(payload).__qualname__}, not bytes"
            )
        return payload

    def _decode(self, payload: bytes) -> Any:
        try:
            return self.serializer.loads(payload)
        except Exception as error:
            # Written by another serializer, or damaged: a miss, overwritten by the load.
            logger.warning(
                "hazina: cache %r found a stored value it cannot read (%r); loading it anew",
                self.name,
                error,
            )
            return _UNDECODABLE

    def _store_args(
        self, op: str, token: str, payload: bytes, value: object, options: EntryOptions
    ) -> list[object] | None:
        """The script's arguments to store ``payload``; ``None`` if it has no expiry."""
        now = self.link.now()
        at: object = ""
        if options.expires_at is not None:
            when = options.expires_at(value) if callable(options.expires_at) else options.expires_at
            if when is not None:
                epoch = _epoch_seconds(when)
                # Server time is epoch time; a registry clock gets the wall-clock distance.
                at = repr(epoch) if now == "" else repr(float(now) + (epoch - time.time()))
        if options.ttl is None and at == "":
            return None  # never expiring: not stored (every Redis entry expires)
        ttl = "" if options.ttl is None else repr(float(options.ttl))
        sliding = "" if options.sliding is None else repr(float(options.sliding))
        refresh_after = "" if self._refresh_after is None else repr(float(self._refresh_after))
        return [op, now, token, payload, ttl, at, sliding, repr(float(self.stale)), refresh_after]

    # -- entries ---------------------------------------------------------------------------

    def get(self, key: Hashable, default: Any = None) -> Any:
        """The value cached under ``key``, or ``default`` if there is no fresh one."""
        base = self._base(key)
        try:
            names = self._names_sync(base)
            answer = self.link.run(SCRIPT, names, ["get", self.link.now()])
        except Unreachable as down:
            if self._on_error == "local":
                self._ran_locally = True
                return super().get(key, default)
            self._deny(down)
            next(self._misses)
            return default
        self._answered()
        state = int(answer[0])
        if state == HIT:
            value = self._decode(answer[1])
            if value is not _UNDECODABLE:
                next(self.hits)
                return value
        elif state == EXPIRED:
            with self._lock:
                self._expirations += 1
        next(self._misses)
        return default

    def __contains__(self, key: object) -> bool:
        """Whether a fresh entry is cached under ``key`` (a peek: no hit, no slide)."""
        base = self._base(key)
        try:
            names = self._names_sync(base)
            answer = self.link.run(SCRIPT, names, ["peek", self.link.now()])
        except Unreachable as down:
            if self._on_error == "local":
                self._ran_locally = True
                return super().__contains__(key)
            self._deny(down)
            return False
        self._answered()
        return int(answer[0]) == HIT

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

        Returns whether it was stored: not if it has already expired, nor if it would
        never expire (an ``expires_at`` function returned ``None`` and there is no ttl).
        """
        options = self._redis_options(ttl, sliding, expires_at, priority)
        self._refuse_coroutine(value)
        base = self._base(key)
        payload = self._encode(value)
        try:
            names = self._names_sync(base)
            with self._lock:
                self._fleet_flights.pop(names[0], None)  # new callers must not join it
            args = self._store_args("set", "", payload, value, options)
            if args is None:
                self.link.run(SCRIPT, names, ["delete", self.link.now()])
                return False
            stored = self.link.run(SCRIPT, names, args)
        except Unreachable as down:
            if self._on_error == "local":
                self._ran_locally = True
                return super().set(key, value, ttl=ttl, sliding=sliding, expires_at=expires_at)
            self._deny(down)
            return False
        self._answered()
        return bool(stored)

    def delete(self, key: Hashable) -> bool:
        """Remove the entry under ``key``; returns whether a fresh one was there."""
        base = self._base(key)
        try:
            names = self._names_sync(base)
            with self._lock:
                self._fleet_flights.pop(names[0], None)
            removed = self.link.run(SCRIPT, names, ["delete", self.link.now()])
        except Unreachable as down:
            if self._on_error == "local":
                self._ran_locally = True
                return super().delete(key)
            self._deny(down)
            return False
        self._answered()
        return bool(removed)

    def clear(self) -> None:
        """Remove every entry, fleet-wide (other processes notice within ``sync_interval``)."""
        super().clear()
        with self._lock:
            self._fleet_flights.clear()
        try:
            answer = self.link.run(SCRIPT, self._generation_keys, self._generation_args("clear"))
        except Unreachable as down:
            if self._on_error == "local":
                self._ran_locally = True
                return
            self._deny(down)
            return
        self._answered()
        self._adopt(answer)

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

        Callers across the fleet missing the same key wait for one ``factory()`` call.
        """
        options = self._redis_options(ttl, sliding, expires_at, priority)
        return self.fetch_sync(key, factory, (), {}, options)  # type: ignore[no-any-return]

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
        """The value under ``key``; if none, the awaited ``factory()``'s result, stored."""
        options = self._redis_options(ttl, sliding, expires_at, priority)
        return await self.fetch_async(key, factory, (), {}, options)  # type: ignore[no-any-return]

    def _redis_options(
        self,
        ttl: float | None,
        sliding: float | None,
        expires_at: ExpiresAt | None,
        priority: Priority | None,
    ) -> EntryOptions:
        if priority not in (None, "normal"):
            raise ConfigurationError(
                f"cache {self.name!r}: priority does not apply on Redis (its maxmemory "
                f"policy evicts), got {priority!r}"
            )
        return self._entry_options(ttl, sliding, expires_at, None)

    # -- stats -------------------------------------------------------------------------------

    def stats(self) -> CacheStats:
        """This process's counters; ``size`` is the stand-in's (0 while Redis answers)."""
        return attrs.evolve(super().stats(), backend_errors=self.link.backend_errors)

    def reset(self) -> None:
        """This process's counters to zero and its stand-in emptied; shared entries stay."""
        super().reset()
        with self._lock:
            self._fleet_flights.clear()

    # -- drivers -------------------------------------------------------------------------------

    def _sync_driver(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        fetch, build_key, options = self.fetch_sync, self.build_key, self.default_entry_options

        def cached_call(*args: Any, **kwargs: Any) -> Any:
            if DISABLED.on:  # hazina.testing.disabled(); nothing next to a round trip
                return fn(*args, **kwargs)
            return fetch(build_key(args, kwargs), fn, args, kwargs, options)

        return cached_call

    def _async_driver(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        fetch, build_key, options = self.fetch_async, self.build_key, self.default_entry_options

        async def cached_call(*args: Any, **kwargs: Any) -> Any:
            if DISABLED.on:  # hazina.testing.disabled(); nothing next to a round trip
                return await fn(*args, **kwargs)
            return await fetch(build_key(args, kwargs), fn, args, kwargs, options)

        return cached_call

    def key_of_call(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Hashable:
        """The key a call of ``fn`` with these arguments uses (checked by the encoding)."""
        return self.build_key(args, kwargs)

    # -- one lookup, fleet-wide ------------------------------------------------------------------

    def fetch_sync(
        self,
        key: Hashable,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: EntryOptions,
    ) -> Any:
        """The value under ``key``: from Redis, from a load in flight, or loaded now."""
        base = self._base(key)
        side = sync_side
        joined = 0  # the epoch in which this call was counted as coalesced, if it was
        while True:
            token = _token()
            try:
                names = self._names_sync(base)
                answer = self.link.run(SCRIPT, names, self._lead_args(token))
            except Unreachable as down:
                return self._fetch_down_sync(down, key, fn, args, kwargs, options)
            self._answered()
            state, found = self._read(answer)
            if state == HIT:
                next(self.hits)
                if len(answer) > 2:  # old, and this caller took the fleet's refresh lease
                    self._refresh_fleet_sync(names, token, fn, args, kwargs, options)
                return found
            with self._lock:
                step, flight, waiter = self._begin_fleet(names[0], state, side, joined)
                joined = self._epoch if step is _JOIN else 0
            if step is _LEAD:
                lease = token if state == LEASED else None
                return self._load_fleet_sync(key, names, lease, flight, fn, args, kwargs, options)
            if step is _POLL:
                return self._poll_sync(key, names, flight, fn, args, kwargs, options)
            side.join_sync(flight, waiter)
            if flight.outcome != ABANDONED:
                return self._settled_fleet_sync(names, flight)
            # The process's leader never finished (interrupted): look again.

    async def fetch_async(
        self,
        key: Hashable,
        fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: EntryOptions,
    ) -> Any:
        """The value under ``key``: from Redis, from a load in flight, or loaded now."""
        base = self._base(key)
        side = async_side
        joined = 0  # the epoch in which this call was counted as coalesced, if it was
        while True:
            token = _token()
            try:
                names = await self._names_async(base)
                answer = await self.link.arun(SCRIPT, names, self._lead_args(token))
            except Unreachable as down:
                return await self._fetch_down_async(down, key, fn, args, kwargs, options)
            self._answered()
            state, found = self._read(answer)
            if state == HIT:
                next(self.hits)
                if len(answer) > 2:  # old, and this caller took the fleet's refresh lease
                    self._refresh_fleet_async(names, token, fn, args, kwargs, options)
                return found
            with self._lock:
                step, flight, waiter = self._begin_fleet(names[0], state, side, joined)
                joined = self._epoch if step is _JOIN else 0
            if step is _LEAD:
                lease = token if state == LEASED else None
                return await self._load_fleet_async(
                    key, names, lease, flight, fn, args, kwargs, options
                )
            if step is _POLL:
                return await self._poll_async(key, names, flight, fn, args, kwargs, options)
            await side.join_async(flight, waiter)
            if flight.outcome != ABANDONED:
                return await self._settled_fleet_async(names, flight)
            # The process's leader never finished (interrupted): look again.

    def _lead_args(self, token: str) -> list[object]:
        return ["lead", self.link.now(), token, self._lease_ms]

    def _read(self, answer: list[Any]) -> tuple[int, Any]:
        """The entry script's answer as (state, value or detail); unreadable values named."""
        state = int(answer[0])
        if state == HIT:
            value = self._decode(answer[1])
            return (UNREADABLE, None) if value is _UNDECODABLE else (HIT, value)
        if state == LEASED and answer[1] in (b"-1", "-1"):
            with self._lock:
                self._expirations += 1
        return state, answer[1]

    def _begin_fleet(
        self, name: str, state: int, side: _ThreadSide | _TaskSide, joined: int
    ) -> tuple[str, Flight, asyncio.Future[None] | None]:
        """Under the lock: lead the load, join this process's flight, or wait for the fleet."""
        if joined == self._epoch:
            self._coalesced -= 1  # its flight was abandoned; counted again below
        task = side.task()
        if state == HELD:
            flight = self._fleet_flights.get(name)
            if flight is not None and self.config.single_flight and flight.joinable(task):
                self._coalesced += 1
                return _JOIN, flight, side.waiter(flight)
            self._coalesced += 1  # a wait for another process's load
            step = _POLL
        else:
            next(self._misses)
            self._loads += 1
            step = _LEAD
        flight = Flight(task, self._epoch)
        self._fleet_flights.setdefault(name, flight)
        return step, flight, None

    def _load_fleet_sync(
        self,
        key: Hashable,
        names: list[str],
        lease: str | None,
        flight: Flight,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: EntryOptions,
    ) -> Any:
        """Load, store under this caller's lease (if it still holds), hand the value on."""
        self._mark_load(key)
        try:
            value = fn(*args, **kwargs)
            self._refuse_coroutine(value)
            payload = self._encode(value)
        except BaseException as error:
            self._fail_fleet(names[0], flight, error)
            if lease is not None:
                self._release_sync(names, lease)
            stale = self._stale_fleet_sync(names, error)
            if stale is _NO_STALE:
                raise
            return stale
        stored = self._store_args("put" if lease else "set", lease or "", payload, value, options)
        if stored is not None:
            # The function ran: its value reaches its callers even if storing it fails
            # (counted in backend_errors).
            with contextlib.suppress(Unreachable):
                self.link.run(SCRIPT, names, stored)
        self._settle_fleet(names[0], flight, value)
        return value

    async def _load_fleet_async(
        self,
        key: Hashable,
        names: list[str],
        lease: str | None,
        flight: Flight,
        fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: EntryOptions,
    ) -> Any:
        """Load, store under this caller's lease (if it still holds), hand the value on."""
        self._mark_load(key)
        try:
            value = await fn(*args, **kwargs)
            self._refuse_coroutine(value)
            payload = self._encode(value)
        except BaseException as error:
            self._fail_fleet(names[0], flight, error)
            if lease is not None:
                await self._release_async(names, lease)
            stale = await self._stale_fleet_async(names, error)
            if stale is _NO_STALE:
                raise
            return stale
        stored = self._store_args("put" if lease else "set", lease or "", payload, value, options)
        if stored is not None:
            # The function ran: its value reaches its callers even if storing it fails
            # (counted in backend_errors).
            with contextlib.suppress(Unreachable):
                await self.link.arun(SCRIPT, names, stored)
        self._settle_fleet(names[0], flight, value)
        return value

    # -- stale values and background refreshes, fleet-wide ---------------------------------

    def _settled_fleet_sync(self, names: list[str], flight: Flight) -> Any:
        """What a caller that waited for ``flight`` gets: its value, a stale one, or its error."""
        if flight.outcome == ERROR and flight.error is not None:
            stale = self._stale_fleet_sync(names, flight.error)
            if stale is not _NO_STALE:
                return stale
        return flight.reraise()

    async def _settled_fleet_async(self, names: list[str], flight: Flight) -> Any:
        """What a caller that waited for ``flight`` gets: its value, a stale one, or its error."""
        if flight.outcome == ERROR and flight.error is not None:
            stale = await self._stale_fleet_async(names, flight.error)
            if stale is not _NO_STALE:
                return stale
        return flight.reraise()

    def _stale_fleet_sync(self, names: list[str], error: BaseException) -> Any:
        """The kept value to answer a failed load with, read from Redis, or ``_NO_STALE``."""
        if not self._may_serve_stale(error):
            return _NO_STALE
        try:
            answer = self.link.run(SCRIPT, names, ["stale", self.link.now()])
        except Unreachable:
            return _NO_STALE  # the load's own error says more than the outage
        return self._served_stale(answer)

    async def _stale_fleet_async(self, names: list[str], error: BaseException) -> Any:
        """The kept value to answer a failed load with, read from Redis, or ``_NO_STALE``."""
        if not self._may_serve_stale(error):
            return _NO_STALE
        try:
            answer = await self.link.arun(SCRIPT, names, ["stale", self.link.now()])
        except Unreachable:
            return _NO_STALE  # the load's own error says more than the outage
        return self._served_stale(answer)

    def _may_serve_stale(self, error: BaseException) -> bool:
        return bool(self.stale) and isinstance(error, Exception) and self._is_stale_error(error)

    def _served_stale(self, answer: list[Any]) -> Any:
        if int(answer[0]) != HIT:
            return _NO_STALE  # never kept, or kept no longer: past stale_if_error
        value = self._decode(answer[1])
        if value is _UNDECODABLE:
            return _NO_STALE
        with self._lock:
            self._stale_served += 1
        return value

    def _refresh_fleet_sync(
        self,
        names: list[str],
        lease: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: EntryOptions,
    ) -> None:
        """Refresh an old entry on a thread; this caller holds the fleet's lease for it."""
        self._count_refresh()
        thread = threading.Thread(
            target=self._refreshed_fleet_sync,
            args=(names, lease, fn, args, kwargs, options),
            name=f"hazina-cache-refresh:{self.name}",
            daemon=True,  # an interpreter exiting does not wait for a refresh
        )
        try:
            thread.start()
        except Exception as error:  # no thread to be had: the lease runs out by itself
            self._fleet_refresh_failed(names, error)

    def _refresh_fleet_async(
        self,
        names: list[str],
        lease: str,
        fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: EntryOptions,
    ) -> None:
        """Refresh an old entry in a task; this caller holds the fleet's lease for it."""
        self._count_refresh()
        refresh = self._refreshed_fleet_async(names, lease, fn, args, kwargs, options)
        try:
            task = asyncio.get_running_loop().create_task(refresh)
        except Exception as error:  # a loop shutting down: the lease runs out by itself
            refresh.close()
            self._fleet_refresh_failed(names, error)
            return
        self._refresh_tasks.add(task)
        task.add_done_callback(self._refresh_tasks.discard)

    def _refreshed_fleet_sync(
        self,
        names: list[str],
        lease: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: EntryOptions,
    ) -> None:
        """Run a fleet refresh and store under its lease (a clear, set or delete voids it)."""
        try:
            value = fn(*args, **kwargs)
            self._refuse_coroutine(value)
            payload = self._encode(value)
        except Exception as error:
            with contextlib.suppress(Unreachable):  # else the lease runs out by itself
                self.link.run(SCRIPT, names, self._postpone_args(lease))
            self._fleet_refresh_failed(names, error)
            return
        except BaseException:
            self._release_sync(names, lease)
            raise
        stored = self._store_args("put", lease, payload, value, options)
        if stored is not None:
            with contextlib.suppress(Unreachable):  # counted in backend_errors
                self.link.run(SCRIPT, names, stored)

    async def _refreshed_fleet_async(
        self,
        names: list[str],
        lease: str,
        fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: EntryOptions,
    ) -> None:
        """Run a fleet refresh and store under its lease (a clear, set or delete voids it)."""
        try:
            value = await fn(*args, **kwargs)
            self._refuse_coroutine(value)
            payload = self._encode(value)
        except Exception as error:
            with contextlib.suppress(Unreachable):  # else the lease runs out by itself
                await self.link.arun(SCRIPT, names, self._postpone_args(lease))
            self._fleet_refresh_failed(names, error)
            return
        except BaseException:
            await self._release_async(names, lease)
            raise
        stored = self._store_args("put", lease, payload, value, options)
        if stored is not None:
            with contextlib.suppress(Unreachable):  # counted in backend_errors
                await self.link.arun(SCRIPT, names, stored)

    def _postpone_args(self, lease: str) -> list[object]:
        # As in memory: a failed refresh waits refresh_after before the next one.
        return ["postpone", self.link.now(), lease, repr(float(self._refresh_after or 0.0))]

    def _count_refresh(self) -> None:
        with self._lock:
            self._loads += 1
            self._refreshes += 1

    def _fleet_refresh_failed(self, names: list[str], error: Exception) -> None:
        """Count a failed refresh (in ``load_errors``) and log it at DEBUG; no call raises it."""
        with self._lock:
            self._load_errors += 1
        if cache_logger.isEnabledFor(logging.DEBUG):
            cache_logger.debug(
                "cache %r: background refresh of %s failed: %r",
                self.name,
                names[0],
                error,
                extra={"hazina_kind": self.kind, "hazina_name": self.name},
            )

    def _release_sync(self, names: list[str], lease: str) -> None:
        """Give the lease up at once, so the fleet's waiters need not wait it out."""
        with contextlib.suppress(Unreachable):  # else it expires by itself
            self.link.run(SCRIPT, names, ["release", "", lease])

    async def _release_async(self, names: list[str], lease: str) -> None:
        """Give the lease up at once, so the fleet's waiters need not wait it out."""
        with contextlib.suppress(Unreachable):  # else it expires by itself
            await self.link.arun(SCRIPT, names, ["release", "", lease])

    def _poll_sync(
        self,
        key: Hashable,
        names: list[str],
        flight: Flight,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: EntryOptions,
    ) -> Any:
        """Wait for another process's load: its value, its lease to free up, or ``lease`` s."""
        deadline = time.monotonic() + self.config.lease
        delay = FIRST_POLL
        try:
            while True:
                left = deadline - time.monotonic()
                sleep(min(delay * random.uniform(0.5, 1.0), max(0.0, left)))
                token = _token()
                answer = self.link.run(SCRIPT, names, self._lead_args(token))
                state, found = self._read(answer)
                if state == HIT:
                    self._settle_fleet(names[0], flight, found)
                    return found
                if state != HELD or time.monotonic() >= deadline:
                    break
                delay = min(delay * 2, MAX_POLL)
        except Unreachable as down:
            self._abandon_fleet(names[0], flight)  # its joiners look again, and find out
            return self._fetch_down_sync(down, key, fn, args, kwargs, options)
        except BaseException:
            self._abandon_fleet(names[0], flight)
            raise
        self._took_over()
        lease = token if state == LEASED else None
        return self._load_fleet_sync(key, names, lease, flight, fn, args, kwargs, options)

    async def _poll_async(
        self,
        key: Hashable,
        names: list[str],
        flight: Flight,
        fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: EntryOptions,
    ) -> Any:
        """Wait for another process's load: its value, its lease to free up, or ``lease`` s."""
        deadline = time.monotonic() + self.config.lease
        delay = FIRST_POLL
        try:
            while True:
                left = deadline - time.monotonic()
                await asleep(min(delay * random.uniform(0.5, 1.0), max(0.0, left)))
                token = _token()
                answer = await self.link.arun(SCRIPT, names, self._lead_args(token))
                state, found = self._read(answer)
                if state == HIT:
                    self._settle_fleet(names[0], flight, found)
                    return found
                if state != HELD or time.monotonic() >= deadline:
                    break
                delay = min(delay * 2, MAX_POLL)
        except Unreachable as down:
            self._abandon_fleet(names[0], flight)  # its joiners look again, and find out
            return await self._fetch_down_async(down, key, fn, args, kwargs, options)
        except BaseException:
            self._abandon_fleet(names[0], flight)
            raise
        self._took_over()
        lease = token if state == LEASED else None
        return await self._load_fleet_async(key, names, lease, flight, fn, args, kwargs, options)

    def _took_over(self) -> None:
        """A waiter for another process's load loads the key itself: a miss after all."""
        with self._lock:
            self._coalesced -= 1
            next(self._misses)
            self._loads += 1

    def _settle_fleet(self, name: str, flight: Flight, value: Any) -> None:
        with self._lock:
            if self._fleet_flights.get(name) is flight:
                del self._fleet_flights[name]
        flight.settle(VALUE, value)

    def _abandon_fleet(self, name: str, flight: Flight) -> None:
        with self._lock:
            if self._fleet_flights.get(name) is flight:
                del self._fleet_flights[name]
        flight.settle(ABANDONED)

    def _fail_fleet(self, name: str, flight: Flight, error: BaseException) -> None:
        with self._lock:
            if self._fleet_flights.get(name) is flight:
                del self._fleet_flights[name]
            if flight.epoch == self._epoch and isinstance(error, Exception):
                self._load_errors += 1
        # As in memory: the leader's own cancellation or exit abandons the flight (its
        # joiners look again); a CancelledError the load raised is its outcome.
        leader_stopped = not isinstance(error, Exception) and not (
            isinstance(error, asyncio.CancelledError)
            and flight.task is not None
            and not flight.task.cancelling()
        )
        flight.settle(ABANDONED if leader_stopped else ERROR, error=error)

    # -- while Redis does not answer ---------------------------------------------------------------

    def _fetch_down_sync(
        self,
        down: Unreachable,
        key: Hashable,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: EntryOptions,
    ) -> Any:
        if self._on_error == "local":
            self._ran_locally = True
            return self.load_sync(key, fn, args, kwargs, options)
        self._deny(down)
        self._called_through()
        self._mark_load(key)
        return fn(*args, **kwargs)

    async def _fetch_down_async(
        self,
        down: Unreachable,
        key: Hashable,
        fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: EntryOptions,
    ) -> Any:
        if self._on_error == "local":
            self._ran_locally = True
            return await self.load_async(key, fn, args, kwargs, options)
        self._deny(down)
        self._called_through()
        self._mark_load(key)
        return await fn(*args, **kwargs)

    def _called_through(self) -> None:
        with self._lock:
            next(self._misses)
            self._loads += 1

    def _deny(self, down: Unreachable) -> None:
        """``"deny"``: raise; ``"allow"``: return, the caller calls through."""
        if self._on_error == "deny":
            raise BackendUnavailable(self.name, down.retry_after) from down.__cause__

    def _answered(self) -> None:
        """Redis answers: a stand-in that served during an outage is emptied."""
        if self._ran_locally:
            self._ran_locally = False
            super().clear()
