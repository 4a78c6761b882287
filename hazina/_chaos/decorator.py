"""``@chaos``: a thin shell over the registry's factory and the decorator core."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, Unpack, overload

from .._core.decorate import Decorated, PolicyDecorator, decorator_for
from .._core.registry import Registry, registry_or_default
from .config import ChaosOptions
from .policy import Chaos

P = ParamSpec("P")
R = TypeVar("R")


@overload
def chaos(fn: Callable[P, R], /) -> Decorated[P, R, Chaos]: ...


@overload
def chaos(
    name: str | None = None,
    /,
    *,
    registry: Registry | None = None,
    **config: Unpack[ChaosOptions],
) -> PolicyDecorator[Chaos]: ...


def chaos(
    name: str | Callable[..., Any] | None = None,
    /,
    *,
    registry: Registry | None = None,
    **config: Any,
) -> Any:
    """Inject faults into a function's calls: errors, delays and results, at rates.

    Args:
        name: The policy's name. Defaults to the function's module and qualified name.
        registry: Where the policy lives; ``hazina.registry`` by default.
        error: The exception to raise instead of calling: a class (instantiated with
            no arguments per injection) or an instance (raised as given each time).
        error_rate: Share of calls that get ``error`` (default 0).
        latency: Seconds of delay before the call (default 0); cut short at an
            enclosing ``@timeout``'s deadline, skipped under ``instant_waits()``.
        latency_rate: Share of calls delayed (default 0).
        result: What a call returns instead of calling (``None`` included).
        result_rate: Share of calls that get ``result`` (default 0).
        enabled: Whether faults are injected from the start (default ``True``); switch
            at run time with ``policy.enable()`` / ``policy.disable()``.
        seed: Seed of the policy's own random numbers, to replay the same faults.

    Raises:
        ConfigurationError: A value is invalid, a rate is given without its ``error``
            or ``result``, or ``name`` exists with another configuration.
    """
    return decorator_for(
        name,
        lambda chosen: registry_or_default(registry).chaos(chosen, **config),
    )
