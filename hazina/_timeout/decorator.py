"""``@timeout``: a thin shell over the registry's factory and the decorator core."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, Unpack, overload

from .._core.decorate import Decorated, PolicyDecorator, decorator_for
from .._core.registry import Registry, registry_or_default
from .config import TimeoutOptions
from .policy import Timeout

P = ParamSpec("P")
R = TypeVar("R")


@overload
def timeout(fn: Callable[P, R], /) -> Decorated[P, R, Timeout]: ...


@overload
def timeout(
    name: str | None = None,
    /,
    *,
    registry: Registry | None = None,
    **config: Unpack[TimeoutOptions],
) -> PolicyDecorator[Timeout]: ...


def timeout(
    name: str | Callable[..., Any] | None = None,
    /,
    *,
    registry: Registry | None = None,
    **config: Any,
) -> Any:
    """Give every call of a function at most ``seconds`` (the timeout ``name``).

    Async calls are cancelled at the deadline. Sync calls run in a worker thread and
    the caller stops waiting at the deadline; the worker cannot be stopped and runs
    the call to its end, its outcome dropped. Either way the caller gets
    :class:`~hazina.TimeoutExceeded`. Nested hazina waits (retry, rate limiter,
    bulkhead) never wait past the deadline; :func:`hazina.remaining` tells user code
    the seconds left.

    Args:
        name: The policy's name. Defaults to the function's module and qualified name.
        registry: Where the policy lives; ``hazina.registry`` by default.
        seconds: The time limit of each call (required).
        max_abandoned: Sync only: while this many abandoned calls still run in their
            workers, further calls fail at once without running (default 8).

    Raises:
        ConfigurationError: A value is invalid, or ``name`` exists with another
            configuration.
    """
    return decorator_for(
        name, lambda chosen: registry_or_default(registry).timeout(chosen, **config)
    )
