"""Retry: call again what failed for a transient reason, waiting longer each time."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Generator
from time import monotonic
from typing import TYPE_CHECKING, Any, TypeAlias, TypedDict

import attrs

from .._core.clock import is_system_clock
from .._core.conditions import ErrorTest, validate_error_test, when
from .._core.counters import new_counter, read_counter
from .._core.policy import Policy
from .._core.switches import WAITS
from .._core.validation import (
    InvalidValue,
    non_negative,
    one_of,
    optional_positive,
    positive,
    positive_int,
)
from .backoff import Backoff, Jitter, base_delay, jittered

if TYPE_CHECKING:
    from .._core.registry import Registry


def _valid_backoff(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value not in ("exponential", "linear", "fixed") and not callable(value):
        raise InvalidValue(attribute.name, value, "'exponential', 'linear', 'fixed' or a callable")


def _optional_callable(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not callable(value):
        raise InvalidValue(attribute.name, value, "None or a predicate over the result")


@attrs.frozen(kw_only=True)
class RetryConfig:
    """A retry policy's configuration; see :func:`hazina.retry`."""

    attempts: int = attrs.field(default=3, validator=positive_int)
    timeout: float | None = attrs.field(default=None, validator=optional_positive)
    backoff: Backoff = attrs.field(default="exponential", validator=_valid_backoff)
    initial: float = attrs.field(default=1.0, validator=non_negative)
    multiplier: float = attrs.field(default=2.0, validator=positive)
    max_delay: float = attrs.field(default=30.0, validator=non_negative)
    jitter: Jitter = attrs.field(
        default="full", validator=one_of("full", "equal", "decorrelated", None)
    )
    on: ErrorTest = attrs.field(default=Exception, validator=validate_error_test)
    on_result: Callable[[Any], bool] | None = attrs.field(
        default=None, validator=_optional_callable
    )


class RetryOptions(TypedDict, total=False):
    """Keyword arguments of :func:`hazina.retry` and its factory."""

    attempts: int
    timeout: float | None
    backoff: Backoff
    initial: float
    multiplier: float
    max_delay: float
    jitter: Jitter
    on: ErrorTest
    on_result: Callable[[Any], bool] | None


@attrs.frozen
class RetryStats:
    """A retry policy's counters since creation or ``reset()``."""

    calls: int
    attempts: int
    retries: int
    successes: int
    successes_after_retry: int
    give_ups: int


@attrs.frozen
class RetryScheduled:
    """Attempt ``attempt`` failed (``error``, or ``None`` for a rejected result);
    the next one follows after ``wait`` seconds."""

    name: str
    attempt: int
    wait: float
    error: BaseException | None


@attrs.frozen
class RetryGaveUp:
    """The retry stopped after ``attempts`` attempts and ``elapsed`` seconds."""

    name: str
    attempts: int
    elapsed: float
    error: BaseException | None


#: One attempt's outcome: the error it raised, or ``None`` and the result it returned.
_Outcome: TypeAlias = tuple[BaseException | None, Any]


@attrs.define
class _Attempts:
    """One call's retry state; never shared between calls."""

    started: float
    number: int = 1
    previous_wait: float = 0.0


class Retry(Policy[RetryConfig, RetryStats]):
    """A named retry policy; get one from ``registry.retry(name, ...)``."""

    kind = "retry"
    config_class = RetryConfig

    def __init__(self, name: str, config: RetryConfig, registry: Registry) -> None:
        super().__init__(name, config, registry)
        self._retry_on = when(config.on)
        self._lock = threading.Lock()
        # Calls that succeeded at the first attempt: the hot path's only write.
        self._first_try_successes = new_counter()
        self._fresh_state()

    def _fresh_state(self) -> None:
        self._first_try_base = read_counter(self._first_try_successes)
        self._calls = 0
        self._attempts = 0
        self._successes = 0
        self._successes_after_retry = 0
        self._give_ups = 0

    def reset(self) -> None:
        with self._lock:
            self._fresh_state()

    def stats(self) -> RetryStats:
        with self._lock:
            first_try = read_counter(self._first_try_successes) - self._first_try_base
            calls = self._calls + first_try
            attempts = self._attempts + first_try
            return RetryStats(
                calls=calls,
                attempts=attempts,
                retries=attempts - calls,
                successes=self._successes + first_try,
                successes_after_retry=self._successes_after_retry,
                give_ups=self._give_ups,
            )

    # -- drivers -------------------------------------------------------------------
    # The first attempt runs inline; only a failure (or a rejected result) leaves
    # the hot path for the retry loop.

    def _sync_driver(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        now, first_try = self._clock.now, self._first_try_successes
        real_time = is_system_clock(self._clock)
        retryable, retry_loop = self._retryable, self._retry_sync
        retry_result = self.config.on_result

        def call_with_retry(*args: Any, **kwargs: Any) -> Any:
            # Read before the first attempt: `timeout` and the give-up note count it.
            started = monotonic() if real_time else now()
            try:
                result = fn(*args, **kwargs)
            except BaseException as error:
                if not retryable(error, 1):
                    raise
                return retry_loop(fn, args, kwargs, _Attempts(started), error)
            if retry_result is not None and retry_result(result):
                return retry_loop(fn, args, kwargs, _Attempts(started), None, result)
            next(first_try)
            return result

        return call_with_retry

    def _async_driver(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        now, first_try = self._clock.now, self._first_try_successes
        real_time = is_system_clock(self._clock)
        retryable, retry_loop = self._retryable, self._retry_async
        retry_result = self.config.on_result

        async def call_with_retry(*args: Any, **kwargs: Any) -> Any:
            started = monotonic() if real_time else now()
            try:
                result = await fn(*args, **kwargs)
            except BaseException as error:
                if not retryable(error, 1):
                    raise
                return await retry_loop(fn, args, kwargs, _Attempts(started), error)
            if retry_result is not None and retry_result(result):
                return await retry_loop(fn, args, kwargs, _Attempts(started), None, result)
            next(first_try)
            return result

        return call_with_retry

    # The retry loop lives once, in _plan, without I/O; these drivers only wait and call.

    def _retry_sync(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        attempts: _Attempts,
        error: BaseException | None,
        result: Any = None,
    ) -> Any:
        plan = self._plan(attempts, error, result)
        try:
            wait = next(plan)
            while True:
                if wait > 0 and not WAITS.instant:
                    try:
                        self._clock.sleep(wait)
                    except BaseException as interrupted:
                        plan.throw(interrupted)
                try:
                    outcome: _Outcome = (None, fn(*args, **kwargs))
                except BaseException as failure:
                    outcome = (failure, None)
                wait = plan.send(outcome)
        except StopIteration as done:
            return done.value

    async def _retry_async(
        self,
        fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        attempts: _Attempts,
        error: BaseException | None,
        result: Any = None,
    ) -> Any:
        plan = self._plan(attempts, error, result)
        try:
            wait = next(plan)
            while True:
                if wait > 0 and not WAITS.instant:
                    try:
                        await self._clock.asleep(wait)
                    except BaseException as cancelled:
                        plan.throw(cancelled)
                try:
                    outcome: _Outcome = (None, await fn(*args, **kwargs))
                except BaseException as failure:
                    outcome = (failure, None)
                wait = plan.send(outcome)
        except StopIteration as done:
            return done.value

    def _plan(
        self, attempts: _Attempts, error: BaseException | None, result: Any
    ) -> Generator[float, _Outcome, Any]:
        """The retry loop after a failed first attempt, as decisions only.

        Yields each wait; is sent each later attempt's ``(error, result)``; returns the
        result to hand back, or raises the error that ends the call.
        """
        on_result = self.config.on_result
        while True:
            wait = self._next_wait(attempts, error)
            if wait is None:
                return self._give_up(attempts, error, result)
            self._emit(RetryScheduled(self.name, attempts.number, wait, error))
            attempts.previous_wait = wait
            try:
                error, result = yield wait
            except BaseException:
                self._count(attempts.number, succeeded=False)  # interrupted mid-wait
                raise
            attempts.number += 1
            if error is not None:
                if not self._retryable(error, attempts.number):
                    raise error
            elif on_result is None or not on_result(result):
                self._count(attempts.number, succeeded=True)
                return result

    # -- decisions -------------------------------------------------------------------

    def _retryable(self, error: BaseException, attempt: int) -> bool:
        """Whether ``error`` is one to retry; if not, the call ends here and is counted."""
        # Cancellation and interpreter exits are never transient failures of a dependency.
        if isinstance(error, Exception) and self._retry_on(error):
            return True
        self._count(attempt, succeeded=False)
        return False

    def _give_up(self, attempts: _Attempts, error: BaseException | None, result: Any) -> Any:
        """Stop: re-raise ``error`` with a note, or return ``result`` if ``on_result`` matched."""
        elapsed = self._clock.now() - attempts.started
        self._count(attempts.number, succeeded=False, gave_up=True)
        self._emit(RetryGaveUp(self.name, attempts.number, elapsed, error))
        if error is None:
            return result
        plural = "s" if attempts.number != 1 else ""
        error.add_note(
            f"hazina: retry {self.name!r} gave up after {attempts.number} attempt{plural} "
            f"in {elapsed:.3f}s"
        )
        raise error

    def _next_wait(self, attempts: _Attempts, error: BaseException | None) -> float | None:
        config = self.config
        if attempts.number >= config.attempts:
            return None
        delay = base_delay(
            config.backoff,
            attempts.number,
            error,
            initial=config.initial,
            multiplier=config.multiplier,
        )
        # Jitter after the cap, so that capped waits still spread.
        wait = jittered(
            min(delay, config.max_delay),
            config.jitter,
            previous=attempts.previous_wait or config.initial,
            initial=config.initial,
            max_delay=config.max_delay,
        )
        retry_after = getattr(error, "retry_after", None)
        if isinstance(retry_after, int | float) and not isinstance(retry_after, bool):
            if retry_after > config.max_delay:
                return None  # the caller said they would not wait that long
            wait = max(wait, float(retry_after))
        if config.timeout is not None:
            remaining = attempts.started + config.timeout - self._clock.now()
            if wait >= remaining:
                return None  # the wait would cross the deadline: do not start it
        return wait

    def _count(self, attempts: int, *, succeeded: bool, gave_up: bool = False) -> None:
        with self._lock:
            self._calls += 1
            self._attempts += attempts
            if succeeded:
                self._successes += 1
                if attempts > 1:
                    self._successes_after_retry += 1
            if gave_up:
                self._give_ups += 1
