"""``@bulkhead``: a thin shell over the registry's factory and the decorator core."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, Unpack, overload

from .._core.decorate import Decorated, PolicyDecorator, decorator_for
from .._core.registry import Registry, registry_or_default
from .config import BulkheadOptions
from .policy import Bulkhead

P = ParamSpec("P")
R = TypeVar("R")


@overload
def bulkhead(fn: Callable[P, R], /) -> Decorated[P, R, Bulkhead]: ...


@overload
def bulkhead(
    name: str | None = None,
    /,
    *,
    registry: Registry | None = None,
    **config: Unpack[BulkheadOptions],
) -> PolicyDecorator[Bulkhead]: ...


def bulkhead(
    name: str | Callable[..., Any] | None = None,
    /,
    *,
    registry: Registry | None = None,
    **config: Any,
) -> Any:
    """Let at most ``max_concurrent`` calls of a function run at once (the bulkhead ``name``).

    Threads and tasks count against one limit. Up to ``max_queue`` more callers wait,
    first come first served, for at most ``max_wait`` seconds (and never past an
    enclosing ``@timeout``'s deadline); the rest get :class:`~hazina.BulkheadFull`.

    Args:
        name: The policy's name; functions sharing a name share the slots. Defaults to
            the function's module and qualified name.
        registry: Where the policy lives; ``hazina.registry`` by default.
        max_concurrent: Calls running at once (required).
        max_queue: Callers that may wait for a slot (default 0: refuse at once).
        max_wait: Seconds a caller waits at most (default ``None``: no limit).
        key: A function of the call's arguments; each key gets its own slots.
        max_keys: Idle keys are forgotten past this many (default 100 000).
        dry_run: Make, count and report every decision, but refuse or queue no call
            (a call that finds no free slot runs at once, beyond the limit).

    Raises:
        ConfigurationError: A value is invalid, or ``name`` exists with another
            configuration.
    """
    return decorator_for(
        name, lambda chosen: registry_or_default(registry).bulkhead(chosen, **config)
    )
