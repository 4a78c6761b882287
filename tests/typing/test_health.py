"""Locks down the health API's typing: ``mypy --strict`` checks this file, pytest runs it.

Every ``assert_type`` must hold for mypy. Lines that must be *rejected* carry a
``# type: ignore[code]``; with ``warn_unused_ignores`` on, mypy fails if hazina's types
stopped catching the mistake.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, assert_type

import hazina
from hazina import (
    HealthCheck,
    HealthCheckStats,
    HealthEntry,
    HealthReport,
    HealthResult,
    HealthStatus,
)
from hazina.health import asgi_app, memory_check, policies_check, wsgi_app

REGISTRY = hazina.Registry()


@hazina.health_check("typing.db", registry=REGISTRY, timeout=1.0, tags=["ready"])
def db() -> bool:
    """A sync check."""
    return True


@hazina.health_check("typing.cache", registry=REGISTRY, critical=False)
async def cache() -> HealthResult:
    """An async check."""
    return HealthResult(HealthStatus.DEGRADED, "warming up", {"filled": 0.4})


def check_registered_functions_keep_their_types() -> None:
    """The decorator hands back the function with its own type."""
    assert_type(db, Callable[[], bool])
    assert_type(cache, Callable[[], Coroutine[Any, Any, HealthResult]])


def check_bare_decorator() -> None:
    """Bare @health_check keeps the type too."""

    @hazina.health_check
    def bare() -> None:
        """Healthy when it returns."""

    assert_type(bare, Callable[[], None])


def check_a_function_needing_arguments_is_rejected() -> None:
    """A check must be callable with no arguments."""

    def needs(host: str) -> bool:
        return bool(host)

    hazina.health_check("typing.needs", registry=REGISTRY)(needs)  # type: ignore[type-var]


def check_registry_api() -> None:
    """Registering and running have precise types."""
    check = REGISTRY.health_check("typing.other", lambda: True, timeout=2, tags="live")
    assert_type(check, HealthCheck)
    assert_type(check.stats(), HealthCheckStats)
    assert_type(REGISTRY.check_health_sync(tags=["live", "ready"]), HealthReport)
    REGISTRY.health_check("typing.bad", lambda: True, timeout="1")  # type: ignore[arg-type]


async def check_the_async_entry_point() -> None:
    """Awaiting check_health gives a report."""
    assert_type(await REGISTRY.check_health(tags="live"), HealthReport)


def check_report_types(report: HealthReport) -> None:
    """The report's parts."""
    assert_type(report.status, HealthStatus)
    assert_type(report.duration, float)
    assert_type(report.entries, Mapping[str, HealthEntry])
    assert_type(report.to_dict(show_details=False), dict[str, Any])
    entry = report.entries["typing.db"]
    assert_type(entry.error, BaseException | None)
    assert_type(entry.tags, tuple[str, ...])


def check_builtins_and_apps() -> None:
    """The built-ins return the check they registered; the apps are callables."""
    assert_type(memory_check(max_rss_bytes=2**30, registry=REGISTRY), HealthCheck)
    assert_type(policies_check(open_status="unhealthy", registry=REGISTRY), HealthCheck)
    policies_check(open_status="sideways", registry=REGISTRY)  # type: ignore[arg-type]
    asgi_app(REGISTRY, show_details=True)
    wsgi_app(REGISTRY)


def test_the_typed_examples_run() -> None:
    """The module-level checks registered and run as their types say."""
    report = REGISTRY.check_health_sync(tags="ready")
    assert list(report.entries) == ["typing.db"]
    full = asyncio.run(REGISTRY.check_health())
    assert full.status is HealthStatus.DEGRADED
    assert full.entries["typing.cache"].data == {"filled": 0.4}
