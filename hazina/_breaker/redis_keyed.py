"""A keyed circuit breaker on Redis: each key's state shared by the fleet.

Each key's state is an unkeyed Redis breaker's (``redis.lua``, one slot per key, under
``{prefix}:{circuit_breaker:<name>:<digest>}``), with its TTL: a key nobody calls is
forgotten by Redis, so ``max_keys`` bounds only this process's views of keys (the least
recently used view goes; the shared state stays). What applies to every key at once
(``force_open()``, and ``reset()``'s generation, which starts every key afresh in O(1))
lives in one policy-wide hash (``keyed.lua``) that each process re-reads at most every
``sync_interval``, and on every read of ``state``, ``state_of()`` or ``stats()``.

A key's first call in a process admits through Redis (a round trip that answers with the
shared state); after that a closed key's call costs one round trip, as unkeyed.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Awaitable, Callable, Hashable
from time import monotonic
from types import TracebackType
from typing import TYPE_CHECKING, Any

import attrs

from .._core.errors import CircuitOpenError, ConfigurationError
from .._core.host import Host
from .._core.keytable import KeyTable
from .._redis.scripts import Script, Unreachable
from .config import CircuitBreakerConfig
from .records import (
    CLOSED,
    FORCED_OPEN,
    HALF_OPEN,
    OPEN,
    SUCCESS,
    CallRejected,
    CircuitBreakerStats,
    CircuitState,
    CircuitStateChanged,
)
from .redis import RedisCircuitBreaker, _text
from .tally import Tally, tallied_stats

if TYPE_CHECKING:
    from .._redis.backend import RedisBackend

META = Script(__package__, "keyed.lua")
#: A forced-open keyed breaker outlives any idle period an operator would expect.
META_TTL_MS = 7 * 24 * 3600 * 1000


def _any_view_goes(view: RedisCircuitBreaker, now: float) -> bool:
    return True  # a view holds nothing Redis does not: the least recently used goes


class RedisKeyedCircuitBreaker(RedisCircuitBreaker):
    """A circuit breaker with ``key=`` on Redis; made by the registry for ``backend=``."""

    def __init__(
        self, name: str, config: CircuitBreakerConfig, host: Host, backend: RedisBackend
    ) -> None:
        super().__init__(name, config, host, backend)
        self._meta_keys = [self.link.keys.policy("k")]
        self._per_key = attrs.evolve(config, key=None)
        self._host = Host(self.clock, self.emit)
        self._key_generation = "0"
        self._forced = False
        self._meta_synced = -math.inf
        self._views_lock = threading.Lock()
        self._views: KeyTable[RedisCircuitBreaker] = KeyTable(
            config.max_keys, self._new_view, _any_view_goes
        )
        self._meta_sync(force=True)

    def _apply_config(self, config: CircuitBreakerConfig) -> None:
        super()._apply_config(config)
        per_key = attrs.evolve(config, key=None)
        with self._views_lock:
            self._per_key = per_key
            self._views.max_keys = config.max_keys
            views = list(self._views.values())
        for view in views:
            view._apply_config(per_key)

    def _new_view(self, key: Hashable) -> RedisCircuitBreaker:
        names = self.link.keys
        shared_as = (self._key_generation, key)
        try:
            keys = [names.of(shared_as, "s"), names.of(shared_as, "w")]
        except TypeError as error:
            raise TypeError(f"circuit_breaker {self.name!r}: {error}") from None
        return RedisCircuitBreaker(
            self.name,
            self._per_key,
            self._host,
            self.backend,
            key=key,
            link=self.link,
            tally=self._tally,
            keys=keys,
        )

    def _view_of(self, key: Hashable) -> RedisCircuitBreaker:
        try:
            with self._views_lock:
                return self._views.obtain(key, self.clock.now())
        except TypeError as error:
            if str(error).startswith("circuit_breaker"):
                raise
            raise TypeError(
                f"circuit_breaker {self.name!r}: the key {key!r} is not hashable; "
                f"make the key function return a hashable value"
            ) from error

    # -- the policy-wide part -----------------------------------------------------------

    def _meta_due(self) -> bool:
        return self.clock.now() - self._meta_synced >= self.backend.sync_interval

    def _meta_sync(self, *, force: bool = False) -> None:
        """Re-read the policy-wide part if due (or ``force``); as last read while down."""
        if not force and not self._meta_due():
            return
        try:
            answer = self.link.run(META, self._meta_keys, ["read", META_TTL_MS])
        except (Unreachable, ConfigurationError):
            return  # down, or only an asyncio client: the last reading stands
        self._apply_meta(answer)

    async def _meta_async(self, *, force: bool = False) -> None:
        """:meth:`_meta_sync` for async code."""
        if not force and not self._meta_due():
            return
        try:
            answer = await self.link.arun(META, self._meta_keys, ["read", META_TTL_MS])
        except (Unreachable, ConfigurationError):
            return  # down, or only an asyncio client: the last reading stands
        self._apply_meta(answer)

    def _apply_meta(self, answer: list[Any]) -> bool:
        """Take the policy-wide reading; whether it was forced open before."""
        generation, forced = _text(answer[0]), _text(answer[1]) == "1"
        with self._views_lock:
            if generation != self._key_generation:
                # reset() somewhere: every key's state starts afresh under the new number.
                self._views.clear()
                self._key_generation = generation
            was_forced, self._forced = self._forced, forced
            self._meta_synced = self.clock.now()
        return was_forced

    def _change_meta(self, mode: str) -> bool:
        try:
            answer = self.link.run(META, self._meta_keys, [mode, META_TTL_MS])
        except Unreachable as down:
            raise self._unavailable(down) from down.__cause__
        return self._apply_meta(answer)

    def _refuse_if_forced(self, key: Hashable) -> None:
        if not self._forced:
            return
        next(self._tally.rejections)
        self.emit(CallRejected(self.name, FORCED_OPEN, None, key=key, dry_run=self._dry_run))
        if not self._dry_run:
            raise CircuitOpenError(self.name, None, key)

    def view_sync(self, key: Hashable) -> RedisCircuitBreaker:
        """The view of ``key``'s shared state a call goes through, or raise if forced open."""
        self._meta_sync()
        self._refuse_if_forced(key)
        return self._view_of(key)

    async def view_async(self, key: Hashable) -> RedisCircuitBreaker:
        """:meth:`view_sync` for async code."""
        await self._meta_async()
        self._refuse_if_forced(key)
        return self._view_of(key)

    # -- drivers ------------------------------------------------------------------------

    def _sync_driver(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        key_of, backend, view_of = self.config.key, self.backend, self.view_sync
        now = monotonic if self._real_time else self.clock.now
        assert key_of is not None

        def call_through_breaker(*args: Any, **kwargs: Any) -> Any:
            view = view_of(key_of(*args, **kwargs))
            probe = None if view._fast and not backend.down_until else view.admit_sync()
            started = now()
            try:
                result = fn(*args, **kwargs)
            except BaseException as error:
                view.record_sync(view._classify(error), probe, now() - started)
                raise
            view.record_sync(SUCCESS, probe, now() - started)
            return result

        return call_through_breaker

    def _async_driver(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        key_of, backend, view_of = self.config.key, self.backend, self.view_async
        now = monotonic if self._real_time else self.clock.now
        assert key_of is not None

        async def call_through_breaker(*args: Any, **kwargs: Any) -> Any:
            view = await view_of(key_of(*args, **kwargs))
            probe = None if view._fast and not backend.down_until else await view.admit_async()
            started = now()
            try:
                result = await fn(*args, **kwargs)
            except BaseException as error:
                await view.record_async(view._classify(error), probe, now() - started)
                raise
            await view.record_async(SUCCESS, probe, now() - started)
            return result

        return call_through_breaker

    # -- reading and controls -----------------------------------------------------------

    @property
    def state(self) -> CircuitState:
        """``forced_open`` after :meth:`force_open` anywhere in the fleet, else ``closed``."""
        self._meta_sync(force=True)
        return FORCED_OPEN if self._forced else CLOSED

    @property
    def retry_after(self) -> float | None:
        """``None``: a keyed breaker's open periods are its keys' (see :meth:`state_of`)."""
        return None

    def state_of(self, key: Hashable) -> CircuitState:
        """The shared state of ``key`` now (``closed`` for a key nobody has called)."""
        if self.state is FORCED_OPEN:
            return FORCED_OPEN
        return self._view_of(key).state

    def force_open(self) -> None:
        """Reject every call of every key, fleet-wide, until :meth:`reset`.

        Raises:
            BackendUnavailable: Redis did not answer; nothing changed.
        """
        if not self._change_meta("force"):
            self.emit(CircuitStateChanged(self.name, CLOSED, FORCED_OPEN, dry_run=self._dry_run))

    def reset(self) -> None:
        """Every key's shared state afresh, fleet-wide; zero this process's counters.

        Raises:
            BackendUnavailable: Redis did not answer; nothing changed.
        """
        was_forced = self._change_meta("reset")
        self._tally = Tally()  # new views count here; the old ones are gone
        with self._views_lock:
            self._views.clear()
        if was_forced:
            self.emit(CircuitStateChanged(self.name, FORCED_OPEN, CLOSED, dry_run=self._dry_run))

    def stats(self) -> CircuitBreakerStats:
        """This process's counters; ``open_keys`` counts the keys it has seen open."""
        state = self.state
        with self._views_lock:
            views = list(self._views.values())
        return tallied_stats(
            self._tally.read(),
            state,
            backend_errors=self.link.backend_errors,
            open_keys=sum(view.seen_state() in (OPEN, HALF_OPEN) for view in views),
        )

    def _no_block(self) -> TypeError:
        return TypeError(
            f"circuit_breaker {self.name!r} has key=: a block has no arguments to key "
            f"by; decorate a function instead"
        )

    def __enter__(self) -> None:
        raise self._no_block()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        raise self._no_block()  # pragma: no cover - __enter__ never lets one in

    async def __aenter__(self) -> None:
        raise self._no_block()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        raise self._no_block()  # pragma: no cover - __aenter__ never lets one in
