"""``@fallback``: a thin shell over the registry's factory and the decorator core."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, Unpack, overload

from .._core.decorate import (
    Decorated,
    PolicyDecorator,
    apply_policy,
    check_target,
    decorator_for,
    is_async_callable,
)
from .._core.errors import ConfigurationError
from .._core.registry import Registry, registry_or_default
from .config import FallbackOptions
from .policy import Fallback

P = ParamSpec("P")
R = TypeVar("R")


def apply_fallback(policy: Fallback, target: Any) -> Any:
    """Wrap ``target``, refusing an async handler for a sync target at decoration time."""
    function = target.__func__ if isinstance(target, classmethod | staticmethod) else target
    if policy.handler_is_async and not is_async_callable(function):
        raise ConfigurationError(
            f"fallback {policy.name!r}: handler {policy.config.handler!r} is async, but "
            f"{getattr(function, '__qualname__', function)!r} is not; a sync function "
            f"cannot await it (give a sync handler, or decorate an async function)"
        )
    return apply_policy(policy, target)


class FallbackDecorator(PolicyDecorator[Fallback]):
    """What ``@fallback(...)`` returns when given a name or options."""

    __slots__ = ()

    def __call__(self, fn: Callable[P, R], /) -> Decorated[P, R, Fallback]:
        check_target(fn)
        return apply_fallback(self._get_policy(fn), fn)  # type: ignore[no-any-return]


@overload
def fallback(fn: Callable[P, R], /) -> Decorated[P, R, Fallback]: ...


@overload
def fallback(
    name: str | None = None,
    /,
    *,
    registry: Registry | None = None,
    **config: Unpack[FallbackOptions],
) -> PolicyDecorator[Fallback]: ...


def fallback(
    name: str | Callable[..., Any] | None = None,
    /,
    *,
    registry: Registry | None = None,
    **config: Any,
) -> Any:
    """Answer a failed call with ``value``, or with ``handler(error, *args, **kwargs)``.

    Args:
        name: The policy's name. Defaults to the function's module and qualified name.
        registry: Where the policy lives; ``hazina.registry`` by default.
        value: What a failed call returns instead (``None`` included).
        handler: Called as ``handler(error, *args, **kwargs)`` with the error and the
            call's own arguments; what it returns is the call's result. ``async def``
            handlers are awaited, and need an async function. Give ``value`` or
            ``handler``, not both.
        on: Exceptions (types or predicate) that the fallback answers (default
            ``Exception``); others propagate. Cancellation, ``KeyboardInterrupt`` and
            ``SystemExit`` always propagate.

    Raises:
        ConfigurationError: A value is invalid, neither or both of ``value`` and
            ``handler`` are given, an async handler meets a sync function, or ``name``
            exists with another configuration.
    """
    return decorator_for(
        name,
        lambda chosen: registry_or_default(registry).fallback(chosen, **config),
        apply=apply_fallback,
        decorator=FallbackDecorator,
    )
