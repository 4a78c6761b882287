"""``@hedge``: a thin shell over the registry's factory and the decorator core."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, Unpack, overload

from .._core.decorate import Decorated, PolicyDecorator, decorator_for
from .._core.registry import Registry, registry_or_default
from .config import HedgeOptions
from .policy import Hedge

P = ParamSpec("P")
R = TypeVar("R")


@overload
def hedge(fn: Callable[P, R], /) -> Decorated[P, R, Hedge]: ...


@overload
def hedge(
    name: str | None = None,
    /,
    *,
    registry: Registry | None = None,
    **config: Unpack[HedgeOptions],
) -> PolicyDecorator[Hedge]: ...


def hedge(
    name: str | Callable[..., Any] | None = None,
    /,
    *,
    registry: Registry | None = None,
    **config: Any,
) -> Any:
    """Start another attempt when a call is slow, and return the first success.

    Args:
        name: The policy's name. Defaults to the function's module and qualified name.
        registry: Where the policy lives; ``hazina.registry`` by default.
        delay: Seconds to wait for a result before starting the next attempt (required):
            a number, or a callable returning one, called once per call. Real time,
            whatever the registry's clock.
        max_hedges: Extra attempts at most (default 1).
        on: Exceptions (types or predicate) after which the next attempt starts at
            once (default ``Exception``); any other error ends the call at once.

    Raises:
        ConfigurationError: A value is invalid or missing, or ``name`` exists with
            another configuration.
    """
    return decorator_for(name, lambda chosen: registry_or_default(registry).hedge(chosen, **config))
