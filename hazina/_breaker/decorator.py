"""``@circuit_breaker``: a thin shell over the registry's factory and the decorator core."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, Unpack, overload

from .._core.backend import BackendChoice
from .._core.decorate import Decorated, PolicyDecorator, decorator_for
from .._core.registry import Registry, registry_or_default
from .config import CircuitBreakerOptions
from .policy import CircuitBreaker

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
    backend: BackendChoice | None = None,
    **config: Unpack[CircuitBreakerOptions],
) -> PolicyDecorator[CircuitBreaker]: ...


def circuit_breaker(
    name: str | Callable[..., Any] | None = None,
    /,
    *,
    registry: Registry | None = None,
    backend: BackendChoice | None = None,
    **config: Any,
) -> Any:
    """Guard a function with the circuit breaker ``name`` (created or reused).

    Args:
        name: The breaker's name; functions sharing a name share one breaker. Defaults
            to the function's module and qualified name.
        backend: Where the state lives: a shared backend such as
            ``hazina.redis.RedisBackend``, or ``"memory"``; by default the registry's.
        registry: Where the breaker lives; ``hazina.registry`` by default.
        failure_rate: Open when this share of the window's calls failed (default 0.5;
            ``None`` turns the rule off)...
        minimum_calls: ...and the window holds at least this many calls (default 10).
        failure_threshold: Open after this many consecutive failures (default 5;
            ``None`` turns the rule off).
        window: ``"count"`` (default) or ``"time"``: what the rate rules look back over.
        window_size: The last this many calls (``"count"``, default 100) or seconds
            (``"time"``, default 60).
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
        on_backend_error: What calls do while a shared backend does not answer:
            ``"local"`` (default, in-process state), ``"allow"`` or ``"deny"``.
        key: A function of the call's arguments: each key (a host, a tenant) gets its
            own breaker state (see ``state_of(key)``); ``None`` (default): one state.
        max_keys: The most key states kept in memory (default 10,000); closed keys
            with nothing in their window are forgotten first, then idle ones.
        open_for_multiplier: Each time probing fails, the next open period is this many
            times longer (default 1: always ``open_for``)...
        max_open_for: ...up to this many seconds (default 10 x ``open_for``).
        dry_run: Make, count and report every decision, but refuse no call.

    Raises:
        ConfigurationError: A value is invalid, or ``name`` exists with another
            configuration.
    """
    return decorator_for(
        name,
        lambda chosen: registry_or_default(registry).circuit_breaker(
            chosen, backend=backend, **config
        ),
    )
