"""A registered health check: its configuration, its stats, and what its outcome means."""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from .._core.decorate import check_target, is_async_callable
from .._core.errors import ConfigurationError
from .._core.forks import fresh_lock, reset_after_fork
from .._core.host import Host
from .._core.policy import PolicyReconfigured
from .._core.validation import build_config
from .config import HealthCheckConfig
from .records import (
    DEGRADED,
    HEALTHY,
    RANK,
    UNHEALTHY,
    HealthCheckStats,
    HealthEntry,
    HealthResult,
    HealthStatus,
    HealthStatusChanged,
)

#: What a check is: a function of no arguments, sync or async.
CheckFunction = Callable[[], Any]


def check_function(name: str, fn: object) -> CheckFunction:
    """``fn`` as a callable of no arguments, or a ConfigurationError saying why not."""
    if isinstance(fn, staticmethod):
        fn = fn.__func__
    try:
        check_target(fn)
    except TypeError as error:
        raise ConfigurationError(f"health_check {name!r}: {error}") from None
    if isinstance(fn, classmethod):
        raise ConfigurationError(
            f"health_check {name!r}: a classmethod cannot be called before its class "
            f"exists; register the bound method (MyClass.check) after the class instead"
        )
    assert callable(fn)
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # some builtins have no signature: trust them
        return fn
    try:
        signature.bind()
    except TypeError:
        raise ConfigurationError(
            f"health_check {name!r}: {fn!r} must be callable with no arguments "
            f"(its signature is {signature}); bind them first, e.g. with functools.partial"
        ) from None
    return fn


class HealthCheck:
    """A named health check; register one with ``@health_check`` or
    ``registry.health_check(name, fn, ...)``, run them with ``registry.check_health()``.
    """

    kind: ClassVar[str] = "health_check"
    config_class: ClassVar[type[HealthCheckConfig]] = HealthCheckConfig

    def __init__(self, name: str, config: HealthCheckConfig, fn: CheckFunction, host: Host) -> None:
        self.name = name
        self.config: HealthCheckConfig = config
        self.fn = fn
        self.is_async: bool = is_async_callable(fn)
        self.emit: Callable[[object], None] = host.emit
        self._lock = threading.Lock()
        # A sync check's run still going in its thread, which later runs join rather
        # than starting a second thread (see _health_runner).
        self.in_flight: concurrent.futures.Future[Any] | None = None
        # An async check's task that was cancelled but has not finished (it ignores
        # cancellation): later runs on its loop join it rather than start another.
        self.leftover: asyncio.Future[Any] | None = None
        self.given: dict[str, Any] = {}
        #: Those of them set by ``registry.configure()``, which win over code.
        self.configured: dict[str, Any] = {}
        self._fresh_state()
        reset_after_fork(self)

    def _after_fork_in_child(self) -> None:
        fresh_lock(self._lock)
        # Its thread stayed in the parent: joining its run would wait for ever.
        self.in_flight = None

    def reconfigure(self, **changes: Any) -> None:
        """Change the check's ``timeout``, ``critical`` or ``tags``; its next run uses them."""
        if not changes:
            return
        with self._lock:
            merged = {**self.given, **changes}
            self.config = build_config(self.kind, self.name, self.config_class, merged)
            self.given = merged
        self.emit(PolicyReconfigured(self.kind, self.name, dict(changes)))

    def _fresh_state(self) -> None:
        self._runs = 0
        self._status: HealthStatus | None = None
        self._failures = 0
        self._timeouts = 0
        self._last_duration: float | None = None

    def stats(self) -> HealthCheckStats:
        """A frozen snapshot of the check's counters."""
        with self._lock:
            return HealthCheckStats(
                runs=self._runs,
                status=self._status,
                failures=self._failures,
                timeouts=self._timeouts,
                last_duration=self._last_duration,
            )

    def reset(self) -> None:
        """Counters at zero and no last status; configuration kept."""
        with self._lock:
            self._fresh_state()

    def record(self, entry: HealthEntry, *, timed_out: bool) -> None:
        """Count one finished run and announce a change of status."""
        with self._lock:
            old = self._status
            self._status = entry.status
            self._runs += 1
            self._failures += entry.status is UNHEALTHY
            self._timeouts += timed_out
            self._last_duration = entry.duration
        if old is not entry.status:
            self.emit(HealthStatusChanged(self.name, old, entry.status))

    def entry(
        self,
        status: HealthStatus,
        duration: float,
        *,
        description: str | None = None,
        error: BaseException | None = None,
        data: dict[str, Any] | None = None,
    ) -> HealthEntry:
        """An entry of this check (its tags filled in)."""
        return HealthEntry(status, description, duration, error, data, self.config.tags)

    def interpret(self, result: object, duration: float) -> HealthEntry:
        """The entry for a value the check returned."""
        if result is None or result is True:
            return self.entry(HEALTHY, duration)
        if result is False:
            return self.entry(UNHEALTHY, duration)
        if isinstance(result, HealthResult):
            return self.entry(
                result.status, duration, description=result.description, data=result.data
            )
        if isinstance(result, HealthStatus):
            return self.entry(result, duration)
        # Reported as the check's error, so a page without details does not show the
        # value's repr (which may hold anything, a connection string with a password).
        unexpected = TypeError(
            f"the check returned {type(result).__name__} {result!r}; expected None, "
            f"True, False, a HealthStatus or a HealthResult"
        )
        return self.failed(unexpected, duration)

    def failed(self, error: BaseException, duration: float) -> HealthEntry:
        """The entry for a check that raised ``error``."""
        return self.entry(
            UNHEALTHY, duration, description=str(error) or type(error).__name__, error=error
        )

    def __repr__(self) -> str:
        return f"<HealthCheck {self.name!r}>"


def overall(outcomes: Iterable[tuple[HealthCheck, HealthEntry]]) -> HealthStatus:
    """Worst wins; a non-critical check lowers the report to ``degraded`` at most."""
    worst = HEALTHY
    for check, entry in outcomes:
        status = entry.status
        if not check.config.critical and status is UNHEALTHY:
            status = DEGRADED
        if RANK[status] > RANK[worst]:
            worst = status
    return worst
