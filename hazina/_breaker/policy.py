"""The circuit breaker: stop calling a dependency that keeps failing, probe it later."""

from __future__ import annotations

import asyncio
import contextvars
import enum
import math
import threading
from collections.abc import Awaitable, Callable
from time import monotonic
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypedDict

import attrs

from .._core.clock import is_system_clock
from .._core.conditions import ErrorTest, validate_error_test, validate_optional_error_test, when
from .._core.counters import new_counter, read_counter
from .._core.errors import CircuitOpenError
from .._core.policy import Policy
from .._core.validation import (
    InvalidValue,
    one_of,
    optional_positive,
    positive,
    positive_int,
    unit_interval,
)
from .window import CountWindow, TimeWindow

if TYPE_CHECKING:
    from .._core.registry import Registry


class CircuitState(enum.StrEnum):
    """Where a breaker stands."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    FORCED_OPEN = "forced_open"


CLOSED = CircuitState.CLOSED
OPEN = CircuitState.OPEN
HALF_OPEN = CircuitState.HALF_OPEN
FORCED_OPEN = CircuitState.FORCED_OPEN


def _optional_positive_int(
    instance: object, attribute: attrs.Attribute[Any], value: object
) -> None:
    if value is not None:
        positive_int(instance, attribute, value)


@attrs.frozen(kw_only=True)
class CircuitBreakerConfig:
    """A circuit breaker's configuration; see :func:`hazina.circuit_breaker`."""

    failure_rate: float = attrs.field(default=0.5, validator=unit_interval)
    minimum_calls: int = attrs.field(default=10, validator=positive_int)
    failure_threshold: int | None = attrs.field(default=5, validator=_optional_positive_int)
    window: Literal["count", "time"] = attrs.field(
        default="count", validator=one_of("count", "time")
    )
    window_size: int = attrs.field(
        default=attrs.Factory(lambda self: 60 if self.window == "time" else 100, takes_self=True),
        validator=positive_int,
    )
    slow_call_duration: float | None = attrs.field(default=None, validator=optional_positive)
    slow_call_rate: float = attrs.field(default=1.0, validator=unit_interval)
    open_for: float = attrs.field(default=30.0, validator=positive)
    half_open_max_calls: int = attrs.field(default=1, validator=positive_int)
    success_threshold: int = attrs.field(default=2, validator=positive_int)
    half_open_timeout: float = attrs.field(
        default=attrs.Factory(lambda self: self.open_for, takes_self=True), validator=positive
    )
    failure_on: ErrorTest = attrs.field(default=Exception, validator=validate_error_test)
    ignore_on: ErrorTest | None = attrs.field(default=None, validator=validate_optional_error_test)

    def __attrs_post_init__(self) -> None:
        if self.window == "count" and self.minimum_calls > self.window_size:
            raise InvalidValue(
                "minimum_calls",
                self.minimum_calls,
                f"at most window_size ({self.window_size}), or the rate rules never apply",
            )


class CircuitBreakerOptions(TypedDict, total=False):
    """Keyword arguments of :func:`hazina.circuit_breaker` and its factory."""

    failure_rate: float
    minimum_calls: int
    failure_threshold: int | None
    window: Literal["count", "time"]
    window_size: int
    slow_call_duration: float | None
    slow_call_rate: float
    open_for: float
    half_open_max_calls: int
    success_threshold: int
    half_open_timeout: float
    failure_on: ErrorTest
    ignore_on: ErrorTest | None


@attrs.frozen
class CircuitBreakerStats:
    """A breaker's counters since creation or ``reset()``; rates over the current window."""

    state: CircuitState
    calls: int
    successes: int
    failures: int
    ignored: int
    rejections: int
    slow_calls: int
    failure_rate: float | None
    slow_call_rate: float | None
    retry_after: float | None


@attrs.frozen
class CircuitStateChanged:
    """A breaker moved from ``old`` to ``new`` state."""

    name: str
    old: CircuitState
    new: CircuitState


@attrs.frozen
class CallRejected:
    """A breaker refused a call while ``state``; ``retry_after`` as in the error."""

    name: str
    state: CircuitState
    retry_after: float | None


# What a call's outcome means to the breaker.
_SUCCESS, _FAILURE, _IGNORED = 0, 1, 2

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

    def __init__(self, name: str, config: CircuitBreakerConfig, registry: Registry) -> None:
        super().__init__(name, config, registry)
        self._is_failure = when(config.failure_on)
        self._is_ignored = when(config.ignore_on) if config.ignore_on is not None else None
        self._lock = threading.Lock()
        # Drawn by every completed, non-ignored call; the hot path's only write.
        self._completions = new_counter()
        self._window: CountWindow | TimeWindow = (
            TimeWindow(config.window_size)
            if config.window == "time"
            else CountWindow(config.window_size)
        )
        self._state = CLOSED
        self._generation = 0
        self._fresh_state()

    def _fresh_state(self) -> None:
        completed = read_counter(self._completions)
        self._stats_base = completed
        self._window.clear(completed)
        self._state = CLOSED
        self._opened_at = 0.0
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

    # -- public controls ---------------------------------------------------------

    @property
    def state(self) -> CircuitState:
        """The state now (a breaker whose ``open_for`` has elapsed reads ``half_open``)."""
        with self._lock:
            events = self._advance(self._clock.now())
        self._publish(events)
        return self._state

    def force_open(self) -> None:
        """Reject every call until :meth:`reset`."""
        with self._lock:
            events = self._move(FORCED_OPEN, self._clock.now())
        self._publish(events)

    def reset(self) -> None:
        """Closed, empty window, counters at zero; configuration kept."""
        with self._lock:
            old = self._state
            self._fresh_state()
        if old is not CLOSED:
            self._publish([CircuitStateChanged(self.name, old, CLOSED)])

    def stats(self) -> CircuitBreakerStats:
        with self._lock:
            now = self._clock.now()
            events = self._advance(now)
            completed = read_counter(self._completions)
            window_calls, window_failures, window_slow = self._window.counts(completed, now)
            enough = window_calls >= self.config.minimum_calls and window_calls > 0
            completions = completed - self._stats_base
            stats = CircuitBreakerStats(
                state=self._state,
                calls=completions + self._ignored,
                successes=completions - self._failures,
                failures=self._failures,
                ignored=self._ignored,
                rejections=self._rejections,
                slow_calls=self._slow_calls,
                failure_rate=window_failures / window_calls if enough else None,
                slow_call_rate=window_slow / window_calls if enough else None,
                retry_after=self._retry_after(now) if self._state is OPEN else None,
            )
        self._publish(events)
        return stats

    # -- context manager ---------------------------------------------------------

    def __enter__(self) -> None:
        probe = None if self._state is CLOSED else self._admit()
        _open_blocks.set((*_open_blocks.get(), (self, probe, self._clock.now())))

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
        duration = self._clock.now() - started
        if exc is None:
            self._complete(_SUCCESS, probe, duration)
        else:
            self._complete(self._classify(exc), probe, duration)

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
        if self.config.slow_call_duration is not None or self.config.window == "time":
            return self._timed_sync_driver(fn)
        admit, completions, on_error = self._admit, self._completions, self._on_error
        complete = self._complete

        def call_through_breaker(*args: Any, **kwargs: Any) -> Any:
            probe = None if self._state is CLOSED else admit()
            try:
                result = fn(*args, **kwargs)
            except BaseException as error:
                on_error(error, probe, 0.0)
                raise
            if probe is None:
                next(completions)
            else:
                complete(_SUCCESS, probe, 0.0)
            return result

        return call_through_breaker

    def _async_driver(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        if self.config.slow_call_duration is not None or self.config.window == "time":
            return self._timed_async_driver(fn)
        admit, completions, on_error = self._admit, self._completions, self._on_error
        complete = self._complete

        async def call_through_breaker(*args: Any, **kwargs: Any) -> Any:
            probe = None if self._state is CLOSED else admit()
            try:
                result = await fn(*args, **kwargs)
            except BaseException as error:
                on_error(error, probe, 0.0)
                raise
            if probe is None:
                next(completions)
            else:
                complete(_SUCCESS, probe, 0.0)
            return result

        return call_through_breaker

    # With a time window or a slow-call rule the breaker needs the time of each call;
    # the plain drivers above stay free of clock reads. A success leaves the hot path
    # only when it was slow or is the first completion of a new second.

    def _timed_sync_driver(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        admit, complete, on_error = self._admit, self._complete, self._on_error
        completions, window, now = self._completions, self._window, self._clock.now
        real_time = is_system_clock(self._clock)
        slow_after = self.config.slow_call_duration or math.inf

        def call_through_breaker(*args: Any, **kwargs: Any) -> Any:
            probe = None if self._state is CLOSED else admit()
            started = monotonic() if real_time else now()
            try:
                result = fn(*args, **kwargs)
            except BaseException as error:
                on_error(error, probe, now() - started)
                raise
            ended = monotonic() if real_time else now()
            if probe is None and ended - started < slow_after and ended < window.bucket_end:
                next(completions)
            else:
                complete(_SUCCESS, probe, ended - started)
            return result

        return call_through_breaker

    def _timed_async_driver(
        self, fn: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        admit, complete, on_error = self._admit, self._complete, self._on_error
        completions, window, now = self._completions, self._window, self._clock.now
        real_time = is_system_clock(self._clock)
        slow_after = self.config.slow_call_duration or math.inf

        async def call_through_breaker(*args: Any, **kwargs: Any) -> Any:
            probe = None if self._state is CLOSED else admit()
            started = monotonic() if real_time else now()
            try:
                result = await fn(*args, **kwargs)
            except BaseException as error:
                on_error(error, probe, now() - started)
                raise
            ended = monotonic() if real_time else now()
            if probe is None and ended - started < slow_after and ended < window.bucket_end:
                next(completions)
            else:
                complete(_SUCCESS, probe, ended - started)
            return result

        return call_through_breaker

    # -- decisions (slow path, under the lock) ------------------------------------

    def _classify(self, error: BaseException) -> int:
        # Cancellation, KeyboardInterrupt, SystemExit say nothing about the dependency.
        if not isinstance(error, Exception) or isinstance(error, asyncio.CancelledError):
            return _IGNORED
        if self._is_ignored is not None and self._is_ignored(error):
            return _IGNORED
        return _FAILURE if self._is_failure(error) else _SUCCESS

    def _on_error(self, error: BaseException, probe: int | None, duration: float) -> None:
        self._complete(self._classify(error), probe, duration)

    def _admit(self) -> int | None:
        """Admit a call while not closed: the probe's generation, or raise."""
        with self._lock:
            now = self._clock.now()
            events = self._advance(now)
            state = self._state
            if state is CLOSED:
                probe = None
            elif state is HALF_OPEN and self._probes_in_flight < self.config.half_open_max_calls:
                self._probes_in_flight += 1
                if self._half_open_deadline is None:
                    self._half_open_deadline = now + self.config.half_open_timeout
                probe = self._generation
            else:
                self._rejections += 1
                retry_after = self._retry_after(now)
                events.append(CallRejected(self.name, state, retry_after))
                error = CircuitOpenError(self.name, retry_after)
                probe = -1
        self._publish(events)
        if probe == -1:
            raise error
        return probe

    def _complete(self, outcome: int, probe: int | None, duration: float) -> None:
        slow_after = self.config.slow_call_duration
        # A slow failure is slow too: a dependency that times out is the slow kind.
        slow = outcome != _IGNORED and slow_after is not None and duration >= slow_after
        with self._lock:
            now = self._clock.now()
            events = self._advance(now)
            if outcome == _IGNORED:
                self._ignored += 1
            else:
                self._window.note_time(now, read_counter(self._completions))
                index = next(self._completions)
                if outcome == _FAILURE:
                    self._failures += 1
                if slow:
                    self._slow_calls += 1
            if probe is not None:
                if probe == self._generation and self._state is HALF_OPEN:
                    events += self._judge_probe(outcome, slow, now)
            elif outcome != _IGNORED and self._state is CLOSED:
                events += self._judge_closed(index, outcome == _FAILURE, slow, now)
        self._publish(events)

    def _judge_probe(self, outcome: int, slow: bool, now: float) -> list[object]:
        self._probes_in_flight -= 1
        if outcome == _IGNORED:
            return []
        # A slow probe means the dependency has not recovered yet.
        if outcome == _FAILURE or slow:
            return self._move(OPEN, now)
        self._probe_successes += 1
        if self._probe_successes >= self.config.success_threshold:
            return self._move(CLOSED, now)
        return []

    def _judge_closed(self, index: int, failure: bool, slow: bool, now: float) -> list[object]:
        config = self.config
        self._window.record(index, now, failure=failure, slow=slow)
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
        calls, failures, slow_calls = self._window.counts(index + 1, now)
        if calls >= config.minimum_calls and (
            failures / calls >= config.failure_rate
            or (
                config.slow_call_duration is not None
                and slow_calls / calls >= config.slow_call_rate
            )
        ):
            return self._move(OPEN, now)
        return []

    def _advance(self, now: float) -> list[object]:
        """Apply the transitions that time alone causes."""
        events: list[object] = []
        if self._state is HALF_OPEN:
            deadline = self._half_open_deadline
            if deadline is not None and now >= deadline:
                # Found late or not, the new open period starts at the deadline.
                events += self._move(OPEN, deadline)
        if self._state is OPEN and now >= self._opened_at + self.config.open_for:
            events += self._move(HALF_OPEN, now)
        return events

    def _move(self, new: CircuitState, at: float) -> list[object]:
        old = self._state
        if new is OPEN:
            self._opened_at = at
        elif new is HALF_OPEN:
            self._generation += 1
            self._probes_in_flight = 0
            self._probe_successes = 0
            self._half_open_deadline = None
        if new is not HALF_OPEN:
            # Every period starts with an empty window and no run of failures.
            self._window.clear(read_counter(self._completions))
            self._consecutive_failures = 0
            self._last_failure_index = -2
        self._state = new
        return [] if old is new else [CircuitStateChanged(self.name, old, new)]

    def _retry_after(self, now: float) -> float | None:
        if self._state is OPEN:
            return max(0.0, self._opened_at + self.config.open_for - now)
        if self._state is HALF_OPEN and self._half_open_deadline is not None:
            return max(0.0, self._half_open_deadline - now)
        if self._state is HALF_OPEN:
            return 0.0
        return None

    def _publish(self, events: list[object]) -> None:
        for event in events:
            self._emit(event)
