"""The circuit breaker: stop calling a dependency that keeps failing, probe it later."""

from __future__ import annotations

import asyncio
import contextvars
import math
import threading
from collections.abc import Awaitable, Callable, Hashable
from types import TracebackType
from typing import Any

import attrs

from .._core.conditions import when
from .._core.counters import Counter, new_counter, read_counter
from .._core.deadline import cancelled_by_deadline
from .._core.errors import CircuitOpenError, ConfigurationError
from .._core.forks import fresh_lock, reset_after_fork
from .._core.host import Host
from .._core.policy import Policy
from .._core.switches import DISABLED
from .config import CircuitBreakerConfig
from .drivers import async_driver, sync_driver
from .keyed import Keyed, keyed_async_driver, keyed_sync_driver
from .records import (
    CLOSED,
    FAILURE,
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
from .window import CountWindow, TimeWindow

# Admission tokens kept by `with breaker:` blocks, innermost last; per thread and task.
_open_blocks: contextvars.ContextVar[tuple[tuple[object, int | None, float], ...]] = (
    contextvars.ContextVar("hazina_breaker_blocks", default=())
)


class CircuitBreaker(Policy[CircuitBreakerConfig, CircuitBreakerStats]):
    """A named circuit breaker; get one from ``registry.circuit_breaker(name, ...)``.

    Usable as a decorator (through :func:`hazina.circuit_breaker`), and as
    ``with breaker:`` / ``async with breaker:`` around a block.
    """

    kind = "circuit_breaker"
    config_class = CircuitBreakerConfig

    def __init__(
        self,
        name: str,
        config: CircuitBreakerConfig,
        host: Host,
        *,
        key: Hashable = None,
        shared: Tally | None = None,
    ) -> None:
        super().__init__(name, config, host)
        #: The key this breaker keeps the state of, inside a keyed breaker (else ``None``).
        self.key = key
        # A key's breaker also counts outcomes into its keyed breaker's tally, which
        # outlives it.
        self._shared = shared
        self._dry_run = config.dry_run
        self._is_failure = when(config.failure_on)
        self._is_ignored = when(config.ignore_on) if config.ignore_on is not None else None
        self._lock = threading.Lock()
        # Drawn by every completed, non-ignored call; the hot path's only write.
        self.completions: Counter = new_counter()
        self.window: CountWindow | TimeWindow = (
            TimeWindow(config.window_size)
            if config.window == "time"
            else CountWindow(config.window_size)
        )
        self.stored_state: CircuitState = CLOSED
        self._generation = 0
        # The latest clock reading taken under the lock: a reading below it means the
        # clock stepped back (freezegun's freeze_time ending), see _locked_now.
        self._seen = -math.inf
        self._fresh_state()
        #: Completions when a keyed breaker's table last looked at this key's state.
        self.seen_completions = 0
        self._keyed: Keyed | None = None
        #: What each key's breaker is configured with (a reconfigure replaces it).
        self.per_key: CircuitBreakerConfig | None = None
        if config.key is not None:
            self.per_key = attrs.evolve(config, key=None)
            host = Host(self.clock, self.emit)
            self._keyed = Keyed(
                self,
                lambda key, tally: CircuitBreaker(
                    name, self.per_key or config, host, key=key, shared=tally
                ),
            )
        reset_after_fork(self)

    def _after_fork_in_child(self) -> None:
        fresh_lock(self._lock)
        if self.stored_state is HALF_OPEN:
            # Probes in flight ran in the parent's other threads and never report here:
            # a fresh half-open period, so the child may probe for itself.
            self._move(HALF_OPEN, self._locked_now())

    def _fresh_state(self) -> None:
        completed = read_counter(self.completions)
        self._stats_base = completed
        self.window.clear(completed)
        self.stored_state = CLOSED
        self._opened_at = 0.0
        # The current open period's length: grows after each failed half-open period.
        self._open_for = self.config.open_for
        self._failures = 0
        self._ignored = 0
        self._rejections = 0
        self._slow_calls = 0
        self._last_failure_index = -2
        self._consecutive_failures = 0
        # Half-open bookkeeping: probes in the current half-open period. The period's
        # number (_generation) only ever grows, even across reset(), so a probe that
        # returns late is never mistaken for one of a later period.
        self._generation += 1
        self._probes_in_flight = 0
        self._probe_successes = 0
        self._half_open_deadline: float | None = None

    def _apply_config(self, config: CircuitBreakerConfig) -> None:
        # The state (closed, open, forced open...) is kept on any reconfigure; a window
        # of another shape cannot hold the old one's calls, so it starts empty.
        if (config.key is None) != (self.config.key is None):
            raise ConfigurationError(
                f"circuit_breaker {self.name!r}: key= cannot be turned on or off at run "
                f"time (the breaker's state is kept per key, or not); use a new breaker"
            )
        with self._lock:
            old = self.config
            self._dry_run = config.dry_run
            # The current open period follows the new open_for, keeping any growth.
            self._open_for = min(
                self._open_for * config.open_for / old.open_for, config.max_open_for
            )
            self._is_failure = when(config.failure_on)
            self._is_ignored = when(config.ignore_on) if config.ignore_on is not None else None
            if (old.window, old.window_size) != (config.window, config.window_size):
                window = (
                    TimeWindow(config.window_size)
                    if config.window == "time"
                    else CountWindow(config.window_size)
                )
                window.clear(read_counter(self.completions))
                self.window = window
                self._consecutive_failures = 0
                self._last_failure_index = -2
            self.config = config
        if self._keyed is not None:
            self.per_key = attrs.evolve(config, key=None)
            self._keyed.table.max_keys = config.max_keys
            for circuit in self._keyed.circuits():
                circuit._apply_config(self.per_key)

    # -- public controls ---------------------------------------------------------

    @property
    def state(self) -> CircuitState:
        """The state now (a breaker whose ``open_for`` has elapsed reads ``half_open``)."""
        with self._lock:
            events = self._advance(self._locked_now())
        self._publish(events)
        return self.stored_state

    def force_open(self) -> None:
        """Reject every call (of every key, for a keyed breaker) until :meth:`reset`."""
        with self._lock:
            events = self._move(FORCED_OPEN, self._locked_now())
        if self._keyed is not None:
            self._keyed.force_open()
        self._publish(events)

    def force_quietly(self) -> None:
        """Forced open, with no event: a keyed breaker reports its keys' forcing once."""
        with self._lock:
            self._move(FORCED_OPEN, self._locked_now())

    def reset(self) -> None:
        """Closed, empty window, counters at zero; configuration kept.

        A keyed breaker forgets every key.
        """
        with self._lock:
            old = self.stored_state
            self._fresh_state()
        events: list[object] = []
        if old is not CLOSED:
            events.append(CircuitStateChanged(self.name, old, CLOSED, dry_run=self._dry_run))
        if self._keyed is not None:
            events += self._keyed.clear()
        self._publish(events)

    def state_of(self, key: Hashable) -> CircuitState:
        """The state of ``key``'s breaker now, in a breaker with ``key=``.

        A key not seen yet (or forgotten) is ``closed``. The breaker's own :attr:`state`
        is ``forced_open`` after :meth:`force_open`, else ``closed``.
        """
        if self._keyed is None:
            raise TypeError(f"circuit_breaker {self.name!r} has no key=; read its state")
        return self._keyed.state_of(key)

    def is_clean(self, now: float) -> bool:
        """Closed with no failure, slow call or run of failures to remember."""
        with self._lock:
            if self.stored_state is not CLOSED or self._consecutive_failures:
                return False
            _, failures, slow = self.window.counts(read_counter(self.completions), now)
        return not failures and not slow

    def stats(self) -> CircuitBreakerStats:
        if self._keyed is not None:
            return self._keyed_stats()
        with self._lock:
            now = self._locked_now()
            events = self._advance(now)
            completed = read_counter(self.completions)
            window_calls, window_failures, window_slow = self.window.counts(completed, now)
            enough = window_calls >= self.config.minimum_calls and window_calls > 0
            completions = completed - self._stats_base
            stats = CircuitBreakerStats(
                state=self.stored_state,
                calls=completions + self._ignored,
                successes=completions - self._failures,
                failures=self._failures,
                ignored=self._ignored,
                rejections=self._rejections,
                slow_calls=self._slow_calls,
                failure_rate=window_failures / window_calls if enough else None,
                slow_call_rate=window_slow / window_calls if enough else None,
                retry_after=self._retry_after(now) if self.stored_state is OPEN else None,
            )
        self._publish(events)
        return stats

    def _keyed_stats(self) -> CircuitBreakerStats:
        keyed = self._keyed
        assert keyed is not None
        state = self.state
        _, failures, ignored, rejections, slow = (
            now - then for now, then in zip(keyed.tally.read(), keyed.base, strict=True)
        )
        counts = (keyed.completed(), failures, ignored, rejections, slow)
        return tallied_stats(counts, state, open_keys=keyed.open_keys())

    # -- context manager ---------------------------------------------------------

    def __enter__(self) -> None:
        if self._keyed is not None:
            raise TypeError(
                f"circuit_breaker {self.name!r} has key=: a block has no arguments to key "
                f"by; decorate a function instead"
            )
        probe = None if self.stored_state is CLOSED else self.admit()
        _open_blocks.set((*_open_blocks.get(), (self, probe, self.clock.now())))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        blocks = _open_blocks.get()
        for position in range(len(blocks) - 1, -1, -1):
            if blocks[position][0] is self:
                _, probe, started = blocks[position]
                _open_blocks.set(blocks[:position] + blocks[position + 1 :])
                break
        else:  # pragma: no cover - only reachable by calling __exit__ by hand
            raise RuntimeError(f"circuit breaker {self.name!r}: __exit__ without __enter__")
        duration = self.clock.now() - started
        if exc is None:
            self.record(SUCCESS, probe, duration)
        else:
            self.record_error(exc, probe, duration)

    async def __aenter__(self) -> None:
        self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    # -- drivers -------------------------------------------------------------------

    def _sync_driver(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        if self._keyed is not None:
            return keyed_sync_driver(self, self._keyed, fn)
        return sync_driver(self, fn)

    def _async_driver(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        if self._keyed is not None:
            return keyed_async_driver(self, self._keyed, fn)
        return async_driver(self, fn)

    # -- decisions (slow path, under the lock) ------------------------------------

    def _classify(self, error: BaseException) -> int:
        # Cancellation, KeyboardInterrupt, SystemExit say nothing about the dependency,
        # except a cancellation by an enclosing hazina deadline: the dependency was too
        # slow, which is the failure a breaker under a timeout exists to count.
        if isinstance(error, asyncio.CancelledError):
            return FAILURE if cancelled_by_deadline(error) else IGNORED
        if not isinstance(error, Exception):
            return IGNORED
        if self._is_ignored is not None and self._is_ignored(error):
            return IGNORED
        return FAILURE if self._is_failure(error) else SUCCESS

    def record_error(self, error: BaseException, probe: int | None, duration: float) -> None:
        try:
            outcome = self._classify(error)
        except BaseException:
            # A failure_on/ignore_on predicate raised: the call still failed, and its
            # probe slot must come back, or a half-open breaker would stay stuck.
            self.record(FAILURE, probe, duration)
            raise
        self.record(outcome, probe, duration)

    def admit(self) -> int | None:
        """Admit a call while not closed: the probe's generation, or raise.

        A dry-run breaker counts and reports a refusal, then admits the call as closed.
        """
        with self._lock:
            now = self._locked_now()
            events = self._advance(now)
            state = self.stored_state
            if state is CLOSED or DISABLED.on:
                probe = None
            elif state is HALF_OPEN and self._probes_in_flight < self.config.half_open_max_calls:
                self._probes_in_flight += 1
                if self._half_open_deadline is None:
                    self._half_open_deadline = now + self.config.half_open_timeout
                probe = self._generation
            else:
                self._rejections += 1
                if self._shared is not None:
                    next(self._shared.rejections)
                retry_after = self._retry_after(now)
                events.append(
                    CallRejected(self.name, state, retry_after, key=self.key, dry_run=self._dry_run)
                )
                error = CircuitOpenError(self.name, retry_after, self.key)
                probe = None if self._dry_run else -1
        try:
            self._publish(events)
        except BaseException:
            # A listener raised past the registry's guard (KeyboardInterrupt, SystemExit):
            # the call will not run, so it gives its probe slot back, counted as ignored.
            if probe is not None and probe != -1:
                self.record(IGNORED, probe, 0.0)
            raise
        if probe == -1:
            raise error
        return probe

    def record(self, outcome: int, probe: int | None, duration: float) -> None:
        slow_after = self.config.slow_call_duration
        # A slow failure is slow too: a dependency that times out is the slow kind.
        slow = outcome != IGNORED and slow_after is not None and duration >= slow_after
        with self._lock:
            now = self._locked_now()
            events = self._advance(now)
            if outcome == IGNORED:
                self._ignored += 1
            else:
                self.window.note_time(now, read_counter(self.completions))
                index = next(self.completions)
                if outcome == FAILURE:
                    self._failures += 1
                if slow:
                    self._slow_calls += 1
            if self._shared is not None:
                # Completions are counted by each key's own counter (see keyed.py).
                self._shared.note(outcome, slow)
            if probe is not None:
                if probe == self._generation and self.stored_state is HALF_OPEN:
                    events += self._judge_probe(outcome, slow, now)
            elif outcome != IGNORED and self.stored_state is CLOSED and not DISABLED.on:
                events += self._judge_closed(index, outcome == FAILURE, slow, now)
        self._publish(events)

    def _judge_probe(self, outcome: int, slow: bool, now: float) -> list[object]:
        self._probes_in_flight -= 1
        if outcome == IGNORED:
            return []
        # A slow probe means the dependency has not recovered yet.
        if outcome == FAILURE or slow:
            return self._move(OPEN, now)
        self._probe_successes += 1
        if self._probe_successes >= self.config.success_threshold:
            return self._move(CLOSED, now)
        return []

    def _judge_closed(self, index: int, failure: bool, slow: bool, now: float) -> list[object]:
        config = self.config
        self.window.record(index, now, failure=failure, slow=slow)
        if failure:
            consecutive = index == self._last_failure_index + 1
            self._consecutive_failures = self._consecutive_failures + 1 if consecutive else 1
            self._last_failure_index = index
        elif not slow:
            return []
        if (
            failure
            and config.failure_threshold is not None
            and self._consecutive_failures >= config.failure_threshold
        ):
            return self._move(OPEN, now)
        calls, failures, slow_calls = self.window.counts(index + 1, now)
        if calls >= config.minimum_calls and (
            (config.failure_rate is not None and failures / calls >= config.failure_rate)
            or (
                config.slow_call_duration is not None
                and slow_calls / calls >= config.slow_call_rate
            )
        ):
            return self._move(OPEN, now)
        return []

    def _locked_now(self) -> float:
        """The clock, read under the lock; a step back counts as no time passing.

        The breaker's times (when it opened, the half-open deadline, the window's
        seconds) move back by the step, so it stands exactly as at the latest reading:
        leaving a freezegun block must not leave it open for decades.
        """
        now = self.clock.now()
        seen = self._seen
        if now < seen:
            self._opened_at += now - seen
            if self._half_open_deadline is not None:
                self._half_open_deadline += now - seen
            self.window.shift(now, seen)
        self._seen = now
        return now

    def _advance(self, now: float) -> list[object]:
        """Apply the transitions that time alone causes."""
        events: list[object] = []
        if self.stored_state is HALF_OPEN:
            deadline = self._half_open_deadline
            if deadline is not None and now >= deadline:
                # Found late or not, the new open period starts at the deadline.
                events += self._move(OPEN, deadline)
        if self.stored_state is OPEN and now >= self._opened_at + self._open_for:
            events += self._move(HALF_OPEN, now)
        return events

    def _move(self, new: CircuitState, at: float) -> list[object]:
        old = self.stored_state
        if new is OPEN:
            self._opened_at = at
            # Reopening after a failed half-open period: the dependency is still down,
            # so probe it less often; a trip from closed starts over.
            if old is HALF_OPEN:
                grown = self._open_for * self.config.open_for_multiplier
                self._open_for = min(grown, self.config.max_open_for)
            else:
                self._open_for = self.config.open_for
        elif new is HALF_OPEN:
            self._generation += 1
            self._probes_in_flight = 0
            self._probe_successes = 0
            self._half_open_deadline = None
        if new is not HALF_OPEN:
            # Every period starts with an empty window and no run of failures.
            self.window.clear(read_counter(self.completions))
            self._consecutive_failures = 0
            self._last_failure_index = -2
        self.stored_state = new
        if old is new:
            return []
        return [CircuitStateChanged(self.name, old, new, key=self.key, dry_run=self._dry_run)]

    def _retry_after(self, now: float) -> float | None:
        if self.stored_state is OPEN:
            return max(0.0, self._opened_at + self._open_for - now)
        if self.stored_state is HALF_OPEN and self._half_open_deadline is not None:
            return max(0.0, self._half_open_deadline - now)
        if self.stored_state is HALF_OPEN:
            return 0.0
        return None

    def _publish(self, events: list[object]) -> None:
        for event in events:
            self.emit(event)
