"""Retry: call again what failed for a transient reason, waiting longer each time."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeGuard

from .._core.conditions import when
from .._core.counters import Counter, new_counter, read_counter
from .._core.deadline import would_pass_deadline
from .._core.forks import fresh_lock, reset_after_fork
from .._core.host import Host
from .._core.policy import Policy
from .._core.switches import DISABLED
from .._core.validation import seconds
from .._retry_budget.policy import RetryBudget
from .backoff import base_delay, jittered
from .config import RetryConfig
from .drivers import Attempts, Outcome, async_driver, sync_driver
from .records import RetryGaveUp, RetryScheduled, RetryStats


class Retry(Policy[RetryConfig, RetryStats]):
    """A named retry policy; get one from ``registry.retry(name, ...)``."""

    kind = "retry"
    config_class = RetryConfig

    def __init__(self, name: str, config: RetryConfig, host: Host) -> None:
        super().__init__(name, config, host)
        self._retry_on = when(config.on)
        self._lock = threading.Lock()
        # Calls that succeeded at the first attempt: the hot path's only write.
        self.first_try_successes: Counter = new_counter()
        #: The budget shared with other retry policies, or ``None``.
        self.budget: RetryBudget | None = None
        if config.budget is not None and host.get_or_create is not None:
            self.budget = host.get_or_create(RetryBudget.kind, config.budget)
            self.budget.attach(self.first_try_successes)
        self._fresh_state()
        reset_after_fork(self)

    def _after_fork_in_child(self) -> None:
        fresh_lock(self._lock)

    def _apply_config(self, config: RetryConfig) -> None:
        # Counters are kept; a new budget name joins that budget from the next call.
        budget = self.budget
        if config.budget != self.config.budget:
            budget = None
            if config.budget is not None and self.host.get_or_create is not None:
                budget = self.host.get_or_create(RetryBudget.kind, config.budget)
                budget.attach(self.first_try_successes)
        with self._lock:
            self._retry_on = when(config.on)
            self.budget = budget
            self.config = config

    def _fresh_state(self) -> None:
        self._first_try_base = read_counter(self.first_try_successes)
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
            first_try = read_counter(self.first_try_successes) - self._first_try_base
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

    def _sync_driver(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        return sync_driver(self, fn)

    def _async_driver(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        return async_driver(self, fn)

    def plan(
        self,
        attempts: Attempts,
        error: BaseException | None,
        result: Any,
        *,
        judge_results: bool = True,
    ) -> Generator[float, Outcome, Any]:
        """The retry loop after a failed first attempt, as decisions only.

        Yields each wait; is sent each later attempt's ``(error, result)``; returns the
        result to hand back, or raises the error that ends the call. The block form,
        which sees no results, passes ``judge_results=False``.
        """
        on_result = self.config.on_result
        if DISABLED.on:  # hazina.testing.disabled(): the first attempt's outcome stands
            self._count(attempts.number, succeeded=False)
            if error is None:
                return result
            raise error
        on_result = self.config.on_result if judge_results else None
        budget = self.budget
        while True:
            try:
                wait = self._next_wait(attempts, error, result)
            except BaseException:
                self._count(attempts.number, succeeded=False)  # a backoff callable raised
                raise
            if wait is None:
                return self._give_up(attempts, error, result)
            if budget is not None and not budget.withdraw(self.clock.now()):
                return self._give_up(attempts, error, result, budget_spent=True)
            self.emit(RetryScheduled(self.name, attempts.number, wait, error))
            attempts.previous_wait = wait
            try:
                error, result = yield wait
            except BaseException:
                self._count(attempts.number, succeeded=False)  # interrupted mid-wait
                raise
            attempts.number += 1
            if error is not None:
                if not self.retryable(error, attempts.number):
                    raise error
            elif on_result is None or not self.result_retryable(result, attempts.number):
                self._count(attempts.number, succeeded=True)
                return result

    # -- decisions -------------------------------------------------------------------

    def retryable(self, error: BaseException, attempt: int) -> bool:
        """Whether ``error`` is one to retry; if not, the call ends here and is counted."""
        # Cancellation and interpreter exits are never transient failures of a dependency.
        try:
            if isinstance(error, Exception) and self._retry_on(error):
                return True
        except BaseException:
            self._count(attempt, succeeded=False)  # the `on` predicate raised: the call ends
            raise
        self._count(attempt, succeeded=False)
        return False

    def result_retryable(self, result: Any, attempt: int) -> bool:
        """Whether ``on_result`` asks for another attempt after ``result``; if its
        predicate raises, the call ends with that error and is counted."""
        try:
            return bool(self.config.on_result(result))  # type: ignore[misc]
        except BaseException:
            self._count(attempt, succeeded=False)
            raise

    def _give_up(
        self,
        attempts: Attempts,
        error: BaseException | None,
        result: Any,
        *,
        budget_spent: bool = False,
    ) -> Any:
        """Stop: re-raise ``error`` with a note, or return ``result`` if ``on_result`` matched."""
        elapsed = self.clock.now() - attempts.started
        self._count(attempts.number, succeeded=False, gave_up=True)
        self.emit(RetryGaveUp(self.name, attempts.number, elapsed, error))
        if error is None:
            return result
        plural = "s" if attempts.number != 1 else ""
        why = f" (retry budget {self.config.budget!r} spent)" if budget_spent else ""
        error.add_note(
            f"hazina: retry {self.name!r} gave up after {attempts.number} attempt{plural} "
            f"in {elapsed:.3f}s{why}"
        )
        raise error

    def _next_wait(
        self, attempts: Attempts, error: BaseException | None, result: Any
    ) -> float | None:
        config = self.config
        if config.attempts is not None and attempts.number >= config.attempts:
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
        if config.retry_after is None:
            retry_after = seconds(getattr(error, "retry_after", None))
        else:
            retry_after = seconds(config.retry_after(result if error is None else error))
        # None, NaN or a negative number asks for no floor; infinity for no retry at all.
        if _is_wait(retry_after):
            if retry_after > config.max_delay:
                return None  # the caller said they would not wait that long
            wait = max(wait, float(retry_after))
        if would_pass_deadline(wait):
            return None  # an enclosing @timeout would cut the next attempt off anyway
        if config.timeout is not None:
            # Waits skipped by instant_waits() still count, so a retry with a timeout
            # but no attempt limit still ends under them.
            elapsed = self.clock.now() - attempts.started + attempts.skipped
            remaining = config.timeout - elapsed
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


def _is_wait(value: object) -> TypeGuard[float]:
    """A number of seconds to wait at least: 0 or more, possibly infinite, never a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
