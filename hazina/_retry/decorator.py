"""``@retry``: a thin shell over the registry's factory and the decorator core."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, Unpack, overload

from .._core.decorate import Decorated, PolicyDecorator, decorator_for
from .._core.registry import Registry, registry_or_default
from .config import RetryOptions
from .policy import Retry

P = ParamSpec("P")
R = TypeVar("R")


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
