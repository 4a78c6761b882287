"""``@health_check``: register a function as a named health check."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar, overload

from .._core.decorate import default_name
from .._core.registry import Registry, registry_or_default

#: A check: callable with no arguments (a staticmethod of no arguments is one too).
CheckT = TypeVar("CheckT", bound=Callable[[], Any])


@overload
def health_check(fn: CheckT, /) -> CheckT: ...


@overload
def health_check(
    name: str | None = None,
    /,
    *,
    timeout: float = 5.0,
    critical: bool = True,
    tags: str | Iterable[str] = (),
    registry: Registry | None = None,
) -> Callable[[CheckT], CheckT]: ...


def health_check(
    name: str | Callable[[], Any] | None = None,
    /,
    *,
    timeout: float = 5.0,
    critical: bool = True,
    tags: str | Iterable[str] = (),
    registry: Registry | None = None,
) -> Any:
    """Register a sync or async function of no arguments as the health check ``name``.

    The function is returned unchanged (calling it still just runs it); the check is
    ``registry.get("health_check", name)``. It may return ``None`` or ``True``
    (healthy), ``False`` (unhealthy), a :class:`~hazina.HealthStatus` or a
    :class:`~hazina.HealthResult`; if it raises, it is unhealthy with the exception's
    message as description.

    Args:
        name: The check's name, unique in its registry. Defaults to the function's
            module and qualified name.
        timeout: Seconds the check may take before it is reported unhealthy (default 5).
        critical: When ``False``, a failure of this check makes the report
            ``degraded`` rather than ``unhealthy``.
        tags: Groups the check belongs to (e.g. ``"live"``, ``"ready"``), selected by
            ``check_health(tags=...)`` and served at ``/health/<tag>``.
        registry: Where the check lives; ``hazina.registry`` by default.

    Raises:
        ConfigurationError: A value is invalid, the name is taken, or the function
            needs arguments.
    """

    def register(fn: Any, chosen: str | None) -> Any:
        where = registry_or_default(registry)
        where.health_check(
            default_name(fn) if chosen is None else chosen,
            fn,
            timeout=timeout,
            critical=critical,
            tags=tags,
        )
        return fn

    if name is None or isinstance(name, str):
        given = name
        return lambda fn: register(fn, given)
    if callable(name) or isinstance(name, staticmethod | classmethod):
        return register(name, None)
    raise TypeError(
        f"the first argument must be a health check name (str) or the function to "
        f"register, got {name!r}"
    )
