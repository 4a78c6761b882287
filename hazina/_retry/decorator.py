"""``@retry``: a thin shell over the registry's factory and the decorator core."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, Unpack, overload

from .._core.decorate import Decorated, PolicyDecorator, decorator_for
from .._core.registry import Registry, registry_or_default
from .block import Retrying
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
        attempts: Total attempts, the first included (default 3); ``None`` retries until
            ``timeout``, which it then requires.
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
        retry_after: Reads the least wait in seconds from a failed outcome (the error,
            or the result ``on_result`` matched), e.g. an HTTP 429's ``Retry-After``;
            ``None`` or a negative value asks for none. Default: the error's
            ``retry_after`` attribute.
        budget: The name of a retry budget shared with other retry policies (created
            with defaults if it does not exist); a retry it refuses gives up.

    Raises:
        ConfigurationError: A value is invalid, or ``name`` exists with another
            configuration.
    """
    return decorator_for(name, lambda chosen: registry_or_default(registry).retry(chosen, **config))


def retrying(
    name: str, /, *, registry: Registry | None = None, **config: Unpack[RetryOptions]
) -> Retrying:
    """Iterator that yields context managers that retry the block they guard.

    ::

        for attempt in hazina.retrying("fetch", attempts=5):
            with attempt:
                response = client.get(url)

        async for attempt in hazina.retrying("fetch", attempts=5):
            async with attempt:
                response = await client.get(url)

    The policy ``name`` is the registry's (created or reused, as by :func:`retry`), with
    its stats and events. A block has no return value, so ``on_result`` does not apply.

    Args:
        name: The retry policy's name.
        registry: Where the policy lives; ``hazina.registry`` by default.
        config: As for :func:`retry`.

    Raises:
        ConfigurationError: A value is invalid, or ``name`` exists with another
            configuration.
    """
    return Retrying(registry_or_default(registry).retry(name, **config))
