"""A circuit breaker whose state lives in Redis: one breaker for every process of a fleet.

The state, the window and the half-open probes are shared; every decision is one Lua
script (``redis.lua`` beside this module). What each process keeps is a *view* of the
shared state, read from the answer of its last round trip:

- closed: a call runs with no round trip before it, and recording its outcome (one round
  trip) answers with the shared state, so the process learns of an open breaker on its
  next call;
- open or forced open: calls are rejected without a round trip until the open period it
  read ends, re-reading the shared state at most every ``sync_interval``;
- half-open: admitting a call is a round trip, so exactly ``half_open_max_calls`` probes
  run fleet-wide. A probe whose process dies holds its slot until
  ``half_open_timeout``, when the breaker reopens.

While Redis does not answer, ``on_backend_error`` decides: ``"local"`` runs the
in-memory breaker this class inherits (started from the view, dropped when Redis answers
again), ``"allow"`` admits and records nothing, ``"deny"`` rejects until Redis is tried
again. Once the function has run, its outcome reaches the caller whatever Redis does.
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Awaitable, Callable, Hashable
from time import monotonic
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .._core.clock import is_system_clock
from .._core.errors import BackendUnavailable, CircuitOpenError, ConfigurationError
from .._core.host import Host
from .._core.switches import DISABLED
from .._redis.link import BackendLink, SharedPolicy
from .._redis.scripts import Script, Unreachable
from .._redis.wire import Command
from .config import CircuitBreakerConfig
from .policy import CircuitBreaker
from .records import (
    CLOSED,
    FORCED_OPEN,
    HALF_OPEN,
    IGNORED,
    OPEN,
    SUCCESS,
    CallRejected,
    CircuitBreakerStats,
    CircuitState,
    CircuitStateChanged,
)
from .tally import Tally, tallied_stats

if TYPE_CHECKING:
    from .._redis.backend import RedisBackend

SCRIPT = Script(__package__, "redis.lua")

#: What admitting a call returns: ``None`` for a call admitted while closed, a ``str``
#: (the shared half-open period's number) for a shared probe, an ``int`` for a probe of
#: the in-memory stand-in during an outage.
Probe = int | str | None

_STATES = {state.value: state for state in CircuitState}

# Admission tokens kept by `with breaker:` blocks, innermost last; per thread and task.
_open_blocks: contextvars.ContextVar[tuple[tuple[object, Probe, float], ...]] = (
    contextvars.ContextVar("hazina_redis_breaker_blocks", default=())
)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class _Reading:
    """What one round trip said about the shared state."""

    __slots__ = ("admitted", "failure_rate", "probe", "retry_after", "slow_call_rate", "state")

    def __init__(self, answer: list[Any]) -> None:
        self.state = _STATES[_text(answer[0])]
        retry_after = _text(answer[1])
        self.retry_after = float(retry_after) if retry_after else None
        self.probe: str | None = _text(answer[2]) or None
        self.admitted = _text(answer[3]) == "1"
        failure_rate, slow_call_rate = _text(answer[4]), _text(answer[5])
        self.failure_rate = float(failure_rate) if failure_rate else None
        self.slow_call_rate = float(slow_call_rate) if slow_call_rate else None


class RedisCircuitBreaker(SharedPolicy, CircuitBreaker):
    """A circuit breaker shared through Redis; made by the registry for ``backend=``.

    With ``key=`` the registry gets a :class:`~.redis_keyed.RedisKeyedCircuitBreaker`,
    whose keys each have one of these (``key=``, on the keyed breaker's ``link``).
    """

    def __new__(cls, name: str, config: CircuitBreakerConfig, *args: Any, **kwargs: Any) -> Any:
        if cls is RedisCircuitBreaker and config.key is not None:
            from .redis_keyed import RedisKeyedCircuitBreaker  # it builds on this class

            cls = RedisKeyedCircuitBreaker
        return super().__new__(cls)

    def __init__(
        self,
        name: str,
        config: CircuitBreakerConfig,
        host: Host,
        backend: RedisBackend,
        *,
        key: Hashable = None,
        link: BackendLink | None = None,
        tally: Tally | None = None,
        keys: list[str] | None = None,
    ) -> None:
        # The inherited in-memory breaker is the stand-in while Redis is down.
        super().__init__(name, config, host, key=key)
        self.backend = backend
        self.link = (
            BackendLink(backend, self.kind, name, config, host.clock) if link is None else link
        )
        self._real_time = is_system_clock(host.clock)
        if keys is None:
            keys = [self.link.keys.policy("s"), self.link.keys.policy("w")]
        self._keys = keys
        self._use(config)
        self._tally = Tally() if tally is None else tally
        # This process's view of the shared state, from its last round trip.
        self._view: CircuitState = CLOSED
        self._open_until = 0.0
        self._synced_at = -math.inf
        #: True while a call may run with no round trip before it (the view is closed
        #: and the in-memory stand-in is not in charge); read on every call.
        self._fast = True
        self._ran_locally = False
        if link is not None:
            # A key's state: its first call here admits through Redis, which answers
            # with the shared state (no round trip when the state is made).
            self._fast = False

    def _created(self) -> None:
        super()._created()
        if self.config.key is None:
            # A new process must not take its first call for granted: the breaker may be
            # open fleet-wide already.
            self._read()

    def _use(self, config: CircuitBreakerConfig) -> None:
        """Send decisions under ``config`` (the arguments are one list, stored at once)."""
        self._on_error = config.on_backend_error
        # Idle state is forgotten after a few open-and-probe cycles (and never before a
        # time window's buckets have left the window).
        longest_open = config.open_for if config.open_for_multiplier == 1 else config.max_open_for
        span = longest_open + config.half_open_timeout
        if config.window == "time":
            span += config.window_size
        self._config_args: list[object] = [
            config.window,
            config.window_size,
            config.minimum_calls,
            "" if config.failure_rate is None else config.failure_rate,
            "" if config.failure_threshold is None else config.failure_threshold,
            "0" if config.slow_call_duration is None else "1",
            config.slow_call_rate,
            config.open_for,
            config.half_open_max_calls,
            config.success_threshold,
            config.half_open_timeout,
            math.ceil(max(3 * span, 60.0) * 1000),
            config.open_for_multiplier,
            config.max_open_for,
        ]

    def _apply_config(self, config: CircuitBreakerConfig) -> None:
        # The shared state is kept: the script starts a fresh window when its shape
        # changes, and reads the open period's length from these arguments.
        super()._apply_config(config)
        self._use(config)

    # -- drivers ------------------------------------------------------------------------

    def _sync_driver(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        breaker, backend = self, self.backend
        admit, record, classify = self.admit_sync, self.record_sync, self._classify
        now = monotonic if self._real_time else self.clock.now

        def call_through_breaker(*args: Any, **kwargs: Any) -> Any:
            probe = None if breaker._fast and not backend.down_until else admit()
            started = now()
            try:
                result = fn(*args, **kwargs)
            except BaseException as error:
                record(classify(error), probe, now() - started)
                raise
            record(SUCCESS, probe, now() - started)
            return result

        return call_through_breaker

    def _async_driver(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        breaker, backend = self, self.backend
        admit, record, classify = self.admit_async, self.record_async, self._classify
        now = monotonic if self._real_time else self.clock.now

        async def call_through_breaker(*args: Any, **kwargs: Any) -> Any:
            probe = None if breaker._fast and not backend.down_until else await admit()
            started = now()
            try:
                result = await fn(*args, **kwargs)
            except BaseException as error:
                await record(classify(error), probe, now() - started)
                raise
            await record(SUCCESS, probe, now() - started)
            return result

        return call_through_breaker

    # -- admitting and recording (one round trip each) ----------------------------------

    def admit_sync(self) -> Probe:
        """Admit a call the view does not wave through: its probe, or raise."""
        if DISABLED.on:
            return None
        if self._reject_if_seen_open():
            return None
        try:
            answer = self.link.run(SCRIPT, self._keys, self._args("admit"))
        except Unreachable as down:
            return self._admit_while_down(down)
        return self._admitted(answer)

    async def admit_async(self) -> Probe:
        """:meth:`admit_sync` for async code."""
        if DISABLED.on:
            return None
        if self._reject_if_seen_open():
            return None
        try:
            answer = await self.link.arun(SCRIPT, self._keys, self._args("admit"))
        except Unreachable as down:
            return self._admit_while_down(down)
        return self._admitted(answer)

    def record_sync(self, outcome: int, probe: Probe, duration: float) -> None:
        """Record a call's outcome; never raises for Redis (the caller has its outcome)."""
        args = None if DISABLED.on else self._record_args(outcome, probe, duration)
        if args is None:
            return
        try:
            answer = self.link.run(SCRIPT, self._keys, args)
        except Unreachable:
            return self._record_while_down(outcome, probe, duration)
        self._apply(answer)
        return None

    async def record_async(self, outcome: int, probe: Probe, duration: float) -> None:
        """:meth:`record_sync` for async code."""
        args = None if DISABLED.on else self._record_args(outcome, probe, duration)
        if args is None:
            return
        try:
            answer = await self.link.arun(SCRIPT, self._keys, args)
        except Unreachable:
            return self._record_while_down(outcome, probe, duration)
        self._apply(answer)
        return None

    def _args(self, mode: str) -> list[object]:
        return [mode, self.link.now(), *self._config_args]

    def _record_args(self, outcome: int, probe: Probe, duration: float) -> list[object] | None:
        """Count the outcome here; the script's arguments, or ``None`` if Redis needs none."""
        tally = self._tally
        slow_after = self.config.slow_call_duration
        # A slow failure is slow too: a dependency that times out is the slow kind.
        slow = outcome != IGNORED and slow_after is not None and duration >= slow_after
        tally.count(outcome, slow)
        if outcome == IGNORED and probe is None:
            return None  # counts as neither, and holds no probe slot to free
        # A probe of the stand-in is an ordinary call to the shared state.
        shared_probe = probe if isinstance(probe, str) else ""
        return [*self._args("record"), outcome, "1" if slow else "0", shared_probe]

    def _reject_if_seen_open(self) -> bool:
        """Reject with no round trip while the open period this process read lasts.

        ``True`` if a dry run let the call through instead (no round trip either).
        """
        view = self._view
        if (view is not OPEN and view is not FORCED_OPEN) or self._ran_locally:
            return False
        now = self.clock.now()
        if now < self._open_until and now - self._synced_at < self.backend.sync_interval:
            self._reject(view, None if view is FORCED_OPEN else self._open_until - now)
            return True
        return False

    def _admitted(self, answer: list[Any]) -> Probe:
        reading = self._apply(answer)
        if not reading.admitted:
            self._reject(reading.state, reading.retry_after)
        return reading.probe

    def _reject(
        self, state: CircuitState, retry_after: float | None, cause: BaseException | None = None
    ) -> None:
        """Count and report a refusal, then raise (a dry run lets the call through)."""
        next(self._tally.rejections)
        self.emit(CallRejected(self.name, state, retry_after, key=self.key, dry_run=self._dry_run))
        if not self._dry_run:
            raise CircuitOpenError(self.name, retry_after, self.key) from cause

    def _apply(self, answer: list[Any]) -> _Reading:
        """Take the shared state as this process's view; emit the changes this trip made."""
        reading = _Reading(answer)
        now = self.clock.now()
        state = reading.state
        with self._lock:
            if self._ran_locally:
                # Redis answers again: the stand-in's state is dropped.
                self._ran_locally = False
                self._fresh_state()
            self._view = state
            if state is OPEN:
                self._open_until = now + (reading.retry_after or 0.0)
            else:
                self._open_until = math.inf if state is FORCED_OPEN else 0.0
            self._synced_at = now
            self._fast = state is CLOSED
        changes = answer[6:]
        for index in range(0, len(changes), 2):
            old, new = _STATES[_text(changes[index])], _STATES[_text(changes[index + 1])]
            self.emit(CircuitStateChanged(self.name, old, new, key=self.key, dry_run=self._dry_run))
        return reading

    # -- while Redis does not answer ----------------------------------------------------

    def _admit_while_down(self, down: Unreachable) -> Probe:
        cause = down.__cause__
        if self._on_error == "local":
            self._stand_in()
            try:
                return super().admit()
            except CircuitOpenError:
                next(self._tally.rejections)
                raise
        if self._on_error == "allow":
            return None
        self._reject(self._view, down.retry_after, cause)
        return None

    def _record_while_down(self, outcome: int, probe: Probe, duration: float) -> None:
        if self._on_error == "local":
            self._stand_in()
            # A shared probe's slot stays taken until the shared half-open timeout.
            super().record(outcome, probe if isinstance(probe, int) else None, duration)

    def _stand_in(self) -> None:
        """Put the in-memory breaker in charge, starting from the state last read."""
        if self._ran_locally:
            return
        now = self.clock.now()
        with self._lock:
            if self._ran_locally:
                return
            self._fresh_state()
            view = self._view
            if view is OPEN and now < self._open_until:
                self.stored_state = OPEN
                self._opened_at = self._open_until - self.config.open_for
            elif view is OPEN or view is HALF_OPEN:
                self._move(HALF_OPEN, now)
            elif view is FORCED_OPEN:
                self.stored_state = FORCED_OPEN
            self._ran_locally = True
            self._fast = False

    def _unavailable(self, down: Unreachable) -> BackendUnavailable:
        error = BackendUnavailable(self.name, down.retry_after)
        error.__cause__ = down.__cause__
        return error

    # -- reading and controls -----------------------------------------------------------

    def _read(self) -> _Reading | None:
        """The shared state now (``None`` while Redis does not answer)."""
        try:
            answer = self.link.run(SCRIPT, self._keys, self._args("read"))
        except Unreachable:
            return None
        except ConfigurationError:
            return None  # a backend with only an asyncio client: the view is all there is
        return self._apply(answer)

    def seen_state(self) -> CircuitState:
        """The state as this process last saw it (its stand-in's while that is in charge)."""
        return self.stored_state if self._ran_locally else self._seen_state()

    def _seen_state(self) -> CircuitState:
        """The state as last read, moved on by time alone (while Redis does not answer)."""
        if self._view is OPEN and self.clock.now() >= self._open_until:
            return HALF_OPEN
        return self._view

    @property
    def state(self) -> CircuitState:
        """The shared state now (a breaker whose ``open_for`` has elapsed reads ``half_open``).

        While Redis does not answer: the stand-in's with ``on_backend_error="local"``,
        else the state last read.
        """
        reading = self._read()
        if reading is not None:
            return reading.state
        return super().state if self._ran_locally else self._seen_state()

    @property
    def retry_after(self) -> float | None:
        """Seconds until the shared breaker admits a probe; ``None`` unless open."""
        return self.stats().retry_after

    def force_open(self) -> None:
        """Reject every call, fleet-wide, until :meth:`reset`.

        Raises:
            BackendUnavailable: Redis did not answer; nothing changed.
        """
        try:
            answer = self.link.run(SCRIPT, self._keys, self._args("force"))
        except Unreachable as down:
            raise self._unavailable(down) from down.__cause__
        self._apply(answer)

    def reset(self) -> None:
        """Close the shared breaker with an empty window; zero this process's counters.

        Raises:
            BackendUnavailable: Redis did not answer; nothing changed.
        """
        try:
            answer = self.link.run(SCRIPT, self._keys, self._args("reset"))
        except Unreachable as down:
            raise self._unavailable(down) from down.__cause__
        self._tally = Tally()
        self._apply(answer)

    def stats(self) -> CircuitBreakerStats:
        """This process's counters; state, rates and ``retry_after`` read from Redis."""
        return self._stats_with(self._read())

    def reading_command(self) -> tuple[RedisBackend, Command] | None:
        """The read :meth:`stats` makes, for the registry to send with others; ``None``
        when Redis is down or the link has its own round trip to make first."""
        if not self.link.may_batch():
            return None
        return self.backend, SCRIPT.command(self._keys, self._args("read"))

    def stats_from(self, answer: Any) -> CircuitBreakerStats:
        """:meth:`stats`, with the answer to :meth:`reading_command` (``None``, or an
        error answer such as ``NOSCRIPT``: read the usual way)."""
        if answer is None or isinstance(answer, Exception):
            return self.stats()
        return self._stats_with(self._apply(answer))

    def _stats_with(self, reading: _Reading | None) -> CircuitBreakerStats:
        if reading is not None:
            state = reading.state
            failure_rate, slow_call_rate = reading.failure_rate, reading.slow_call_rate
            retry_after = reading.retry_after if state is OPEN else None
        elif self._ran_locally:
            local = super().stats()
            state, retry_after = local.state, local.retry_after
            failure_rate, slow_call_rate = local.failure_rate, local.slow_call_rate
        else:
            state = self._seen_state()
            failure_rate = slow_call_rate = None
            retry_after = None
            if state is OPEN:
                retry_after = max(0.0, self._open_until - self.clock.now())
        return tallied_stats(
            self._tally.read(),
            state,
            failure_rate=failure_rate,
            slow_call_rate=slow_call_rate,
            retry_after=retry_after,
            backend_errors=self.link.backend_errors,
        )

    # -- context manager ----------------------------------------------------------------

    def _now(self) -> float:
        return monotonic() if self._real_time else self.clock.now()

    def _enter(self, probe: Probe) -> None:
        _open_blocks.set((*_open_blocks.get(), (self, probe, self._now())))

    def _exit(self, exc: BaseException | None) -> tuple[int, Probe, float]:
        """The outcome, probe and duration of this breaker's innermost open block."""
        blocks = _open_blocks.get()
        for position in range(len(blocks) - 1, -1, -1):
            if blocks[position][0] is self:
                _, probe, started = blocks[position]
                _open_blocks.set(blocks[:position] + blocks[position + 1 :])
                break
        else:  # pragma: no cover - only reachable by calling __exit__ by hand
            raise RuntimeError(f"circuit breaker {self.name!r}: __exit__ without __enter__")
        outcome = SUCCESS if exc is None else self._classify(exc)
        return outcome, probe, self._now() - started

    def __enter__(self) -> None:
        self._enter(None if self._fast and not self.backend.down_until else self.admit_sync())

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.record_sync(*self._exit(exc))

    async def __aenter__(self) -> None:
        self._enter(
            None if self._fast and not self.backend.down_until else await self.admit_async()
        )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.record_async(*self._exit(exc))
