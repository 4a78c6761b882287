"""The public ``@rate_limited`` decorator: a thin shell over the registry's factory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, Unpack, overload

from .._core.backend import BackendChoice
from .._core.decorate import Decorated, PolicyDecorator, decorator_for
from .._core.registry import Registry, registry_or_default
from .config import RateLimiterOptions
from .policy import RateLimiter

P = ParamSpec("P")
R = TypeVar("R")


@overload
def rate_limited(fn: Callable[P, R], /) -> Decorated[P, R, RateLimiter]: ...


@overload
def rate_limited(
    name: str | None = None,
    /,
    *,
    registry: Registry | None = None,
    backend: BackendChoice | None = None,
    **config: Unpack[RateLimiterOptions],
) -> PolicyDecorator[RateLimiter]: ...


def rate_limited(
    name: str | Callable[..., Any] | None = None,
    /,
    *,
    registry: Registry | None = None,
    backend: BackendChoice | None = None,
    **config: Any,
) -> Any:
    """Admit calls to a function within the limits of the rate limiter ``name``.

    Args:
        name: The limiter's name; functions sharing a name share its limits. Defaults
            to the function's module and qualified name.
        backend: Where the state lives: a shared backend such as
            ``hazina.redis.RedisBackend``, or ``"memory"``; by default the registry's.
        registry: Where the limiter lives; ``hazina.registry`` by default.
        rate: Tokens per ``per`` seconds (no default: give ``rate`` or ``limits``).
        per: The period in seconds (default 1).
        burst: The most tokens at once (default ``rate``).
        limits: Several limits instead of one, all of which must admit a call:
            strings like ``"10/second"`` or ``"1000/hour"``, or :class:`Limit` objects.
        algorithm: ``"token_bucket"`` (default), ``"gcra"`` or ``"sliding_window"``.
        key: A function of the call's arguments (``self`` included for methods) giving
            the key that has its own limits, e.g. a user id; default: one for all.
        max_keys: The most keys tracked at once (default 100 000).
        cost: Tokens a call takes (default 1), or a function of the call's arguments
            giving them.
        wait: Over the limit, wait (sleep, or await) until admitted instead of raising.
        max_wait: With ``wait``, raise at once if admission is further away than this.
        on_backend_error: What calls do while a shared backend does not answer:
            ``"local"`` (default, in-process state), ``"allow"`` or ``"deny"``.
        local_fraction: While a shared backend is down and ``on_backend_error`` is
            ``"local"``, each process runs with its rates and bursts times this
            (default 1.0).
        dry_run: Make, count and report every decision (refusals, waits), but refuse or
            delay no call.

    Raises:
        ConfigurationError: A value is invalid, or ``name`` exists with another
            configuration.
    """
    return decorator_for(
        name,
        lambda chosen: registry_or_default(registry).rate_limiter(
            chosen, backend=backend, **config
        ),
    )
