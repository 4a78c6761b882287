"""The public decorators: thin shells over the registry's factories and the core."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, Unpack, overload

from .._core.decorate import Decorated, PolicyDecorator, decorator_for
from .._core.registry import Registry, registry_or_default
from .._retry.policy import Retry, RetryOptions
from .policy import CircuitBreaker, CircuitBreakerOptions

P = ParamSpec("P")
R = TypeVar("R")


@overload
def circuit_breaker(fn: Callable[P, R], /) -> Decorated[P, R, CircuitBreaker]: ...


@overload
def circuit_breaker(
    name: str | None = None,
    /,
    *,
    registry: Registry | None = None,
    **config: Unpack[CircuitBreakerOptions],
) -> PolicyDecorator[CircuitBreaker]: ...


def circuit_breaker(
    name: str | Callable[..., Any] | None = None,
    /,
    *,
    registry: Registry | None = None,
    **config: Any,
) -> Any:
    """Guard a function with the circuit breaker ``name`` (created or reused).

    Args:
        name: The breaker's name; functions sharing a name share one breaker. Defaults
            to the function's module and qualified name.
        registry: Where the breaker lives; ``hazina.registry`` by default.
        failure_rate: Open when this share of the window's calls failed (default 0.5)...
        minimum_calls: ...and the window holds at least this many calls (default 10).
        failure_threshold: Open after this many consecutive failures (default 5;
            ``None`` turns the rule off).
        window: ``"count"`` (last ``window_size`` calls, default 100) or ``"time"``
            (last ``window_size`` seconds, default 60).
        slow_call_duration: Calls taking at least this many seconds are slow.
        slow_call_rate: Open when this share of the window's calls were slow (default 1.0).
        open_for: Seconds to stay open before admitting probes (default 30).
        half_open_max_calls: Probes in flight at once while half-open (default 1).
        success_threshold: Successful probes that close the breaker (default 2).
        half_open_timeout: Reopen if the probes have not closed it within this many
            seconds of the first probe (default ``open_for``).
        failure_on: Exceptions (types or predicate) that count as failures (default
            ``Exception``); others count as successes.
        ignore_on: Exceptions that count as neither.

    Raises:
        ConfigurationError: A value is invalid, or ``name`` exists with another
            configuration.
    """
    return decorator_for(
        name, lambda chosen: registry_or_default(registry).circuit_breaker(chosen, **config)
    )


@overload
def retry(fn: Callable[P, R], /) -> Decorated[P, R, Retry]: ...


@overload
def retry(
    name: str | None = None,
    /,
    *,
    registry: Registry | None = None,
    **config: Unpack[RetryOptions],
) -> PolicyDecorator[Retry]: ...


def retry(
    name: str | Callable[..., Any] | None = None,
    /,
    *,
    registry: Registry | None = None,
    **config: Any,
) -> Any:
    """Retry a function under the retry policy ``name`` (created or reused).

    Args:
        name: The policy's name. Defaults to the function's module and qualified name.
        registry: Where the policy lives; ``hazina.registry`` by default.
        attempts: Total attempts, the first included (default 3).
        timeout: Total seconds across all attempts and waits (default: no limit).
        backoff: ``"exponential"`` (default), ``"linear"``, ``"fixed"``, or a callable
            ``(attempt, error) -> seconds``.
        initial: The first wait, before jitter (default 1 s).
        multiplier: Growth factor of exponential backoff (default 2).
        max_delay: Cap on any one wait (default 30 s); a ``retry_after`` above it
            gives up at once.
        jitter: ``"full"`` (default), ``"equal"``, ``"decorrelated"`` or ``None``.
        on: Exceptions (types or predicate) worth retrying (default ``Exception``).
        on_result: Predicate over a returned value that asks for another attempt.

    Raises:
        ConfigurationError: A value is invalid, or ``name`` exists with another
            configuration.
    """
    return decorator_for(name, lambda chosen: registry_or_default(registry).retry(chosen, **config))
