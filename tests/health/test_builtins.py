"""The ready-made checks: process memory, and the registry's breakers and rate limiters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from conftest import CheckHealth

import hazina
from hazina import HealthStatus
from hazina._health import builtins as _health_builtins
from hazina.health import memory_check, policies_check
from hazina.testing import FakeClock

HEALTHY, DEGRADED, UNHEALTHY = HealthStatus.HEALTHY, HealthStatus.DEGRADED, HealthStatus.UNHEALTHY
GIB = 2**30


def fail() -> None:
    """The dependency is down."""
    raise ConnectionError("down")


# -- memory ----------------------------------------------------------------------------


def test_memory_below_the_limit_is_healthy(
    registry: hazina.Registry, check_health: CheckHealth
) -> None:
    """Resident memory under max_rss_bytes is healthy; data has the size and the limit."""
    check = memory_check(max_rss_bytes=64 * GIB, registry=registry)

    entry = check_health().entries["memory"]

    assert registry.get("health_check", "memory") is check
    assert entry.status is HEALTHY
    assert entry.data is not None
    assert entry.data["max_rss_bytes"] == 64 * GIB
    # A Python process with pytest loaded is well above 10 MiB and below 64 GiB.
    assert 10 * 2**20 < entry.data["rss_bytes"] < 64 * GIB
    assert entry.description is not None
    assert entry.description.startswith("resident memory ")
    assert "within" in entry.description


def test_memory_above_the_limit_is_degraded(
    registry: hazina.Registry, check_health: CheckHealth
) -> None:
    """Resident memory above max_rss_bytes degrades the check and the report."""
    memory_check(max_rss_bytes=2**20, name="rss", tags="live", registry=registry)

    report = check_health(tags="live")

    entry = report.entries["rss"]
    assert report.status is DEGRADED
    assert entry.status is DEGRADED
    assert entry.data is not None
    assert entry.data["rss_bytes"] > entry.data["max_rss_bytes"] == 2**20
    assert entry.description is not None
    assert "above 1.0 MiB" in entry.description


def test_memory_is_read_from_proc_status_when_statm_is_missing(
    registry: hazina.Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without /proc/self/statm, /proc/self/status gives the current size, about the same."""
    statm_rss, statm_peak = _health_builtins.resident_memory()
    monkeypatch.setattr(_health_builtins, "PROC_STATM", "/nonexistent/statm")

    status_rss, status_peak = _health_builtins.resident_memory()

    assert statm_rss is not None
    assert status_rss is not None
    assert (statm_peak, status_peak) == (False, False)
    assert abs(status_rss - statm_rss) < statm_rss * 0.2


def test_memory_falls_back_to_the_peak_without_proc(
    registry: hazina.Registry, check_health: CheckHealth, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without /proc (macOS, BSD) the peak size from resource is used, and said to be."""
    monkeypatch.setattr(_health_builtins, "PROC_STATM", "/nonexistent/statm")
    monkeypatch.setattr(_health_builtins, "PROC_STATUS", "/nonexistent/status")
    memory_check(max_rss_bytes=64 * GIB, registry=registry)

    entry = check_health().entries["memory"]

    assert entry.status is HEALTHY
    assert entry.description is not None
    assert entry.description.startswith("peak resident memory ")
    assert entry.data is not None
    assert entry.data["rss_bytes"] > 10 * 2**20


def test_memory_that_cannot_be_measured_is_not_a_failure(
    registry: hazina.Registry, check_health: CheckHealth, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where no source answers, the check says so and stays healthy."""
    monkeypatch.setattr(_health_builtins, "resident_memory", lambda: (None, True))
    memory_check(max_rss_bytes=GIB, registry=registry)

    entry = check_health().entries["memory"]

    assert entry.status is HEALTHY
    assert entry.description == "resident memory cannot be measured here"
    assert entry.data == {"rss_bytes": None, "max_rss_bytes": GIB}


@pytest.mark.parametrize("limit", [0, -5, 1.5, True, "1GB", None])
def test_memory_check_refuses_an_invalid_limit(registry: hazina.Registry, limit: Any) -> None:
    """max_rss_bytes must be a whole number of bytes above 0, named in the error."""
    with pytest.raises(hazina.ConfigurationError, match=r"'memory': max_rss_bytes .*got"):
        memory_check(max_rss_bytes=limit, registry=registry)

    assert registry.stats()["health_check"] == {}


def test_memory_check_uses_the_default_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without registry=, the check goes to hazina.registry."""
    from hazina._core import registry as _registry

    fresh = hazina.Registry()
    monkeypatch.setattr(_registry, "registry", fresh)

    check = memory_check(max_rss_bytes=GIB)

    assert fresh.get("health_check", "memory") is check


# -- policies --------------------------------------------------------------------------


def open_breaker(registry: hazina.Registry, name: str) -> hazina.CircuitBreaker:
    """A breaker opened the real way: by a failing call through it."""
    guarded = hazina.circuit_breaker(name, registry=registry, failure_threshold=1, open_for=30)(
        fail
    )
    with pytest.raises(ConnectionError):
        guarded()
    assert guarded.policy.state is hazina.CircuitState.OPEN
    return guarded.policy


def test_closed_breakers_are_healthy(registry: hazina.Registry, check_health: CheckHealth) -> None:
    """With every breaker closed, the check is healthy and lists their states."""
    registry.circuit_breaker("payments")
    registry.circuit_breaker("inventory")
    check = policies_check(registry=registry)

    entry = check_health().entries["policies"]

    assert registry.get("health_check", "policies") is check
    assert entry.status is HEALTHY
    assert entry.description == "2 circuit breakers closed"
    assert entry.data == {
        "open_breakers": [],
        "breakers": {"payments": "closed", "inventory": "closed"},
        "rate_limited": [],
    }


def test_an_open_breaker_degrades_the_report(
    registry: hazina.Registry, check_health: CheckHealth
) -> None:
    """A breaker that opened makes the check degraded, naming it."""
    registry.circuit_breaker("inventory")
    open_breaker(registry, "payments")
    policies_check(registry=registry)

    report = check_health()

    entry = report.entries["policies"]
    assert report.status is DEGRADED
    assert entry.status is DEGRADED
    assert entry.data is not None
    assert entry.data["open_breakers"] == ["payments"]
    assert entry.data["breakers"] == {"inventory": "closed", "payments": "open"}
    assert entry.description == "circuit breakers not closed: payments (open)"


def test_an_open_breaker_can_make_the_report_unhealthy(
    registry: hazina.Registry, check_health: CheckHealth
) -> None:
    """With open_status='unhealthy', an open breaker makes the report unhealthy."""
    open_breaker(registry, "payments")
    policies_check(open_status="unhealthy", name="breakers", registry=registry)

    report = check_health()

    assert report.status is UNHEALTHY
    assert report.entries["breakers"].status is UNHEALTHY


def test_half_open_and_forced_open_breakers_count_as_open(
    registry: hazina.Registry, clock: FakeClock, check_health: CheckHealth
) -> None:
    """A breaker probing (half-open) or forced open is not closed either."""
    open_breaker(registry, "payments")
    registry.circuit_breaker("search").force_open()
    registry.circuit_breaker("inventory")
    policies_check(registry=registry)
    clock.advance(30)

    entry = check_health().entries["policies"]

    assert entry.status is DEGRADED
    assert entry.data is not None
    assert entry.data["open_breakers"] == ["payments", "search"]
    assert entry.data["breakers"]["payments"] == "half_open"
    assert entry.data["breakers"]["search"] == "forced_open"


def test_a_breaker_that_closes_again_makes_the_check_healthy(
    registry: hazina.Registry, check_health: CheckHealth, events: list[object]
) -> None:
    """After the breaker is reset, the check is healthy again, and the change is announced."""
    breaker = open_breaker(registry, "payments")
    policies_check(registry=registry)
    assert check_health().status is DEGRADED

    breaker.reset()

    report = check_health()
    assert report.status is HEALTHY
    assert report.entries["policies"].description == "1 circuit breaker closed"
    changes = [event for event in events if isinstance(event, hazina.HealthStatusChanged)]
    assert changes == [
        hazina.HealthStatusChanged("policies", None, DEGRADED),
        hazina.HealthStatusChanged("policies", DEGRADED, HEALTHY),
    ]


def test_breakers_created_after_the_check_are_seen(
    registry: hazina.Registry, check_health: CheckHealth
) -> None:
    """The check reads the registry when it runs, not when it was registered."""
    policies_check(registry=registry)
    assert check_health().entries["policies"].description == "0 circuit breakers closed"

    open_breaker(registry, "late")

    assert check_health().entries["policies"].status is DEGRADED


@pytest.mark.parametrize("open_status", ["healthy", "down", None])
def test_policies_check_refuses_an_invalid_open_status(
    registry: hazina.Registry, open_status: Any
) -> None:
    """open_status must be 'degraded' or 'unhealthy', named in the error."""
    with pytest.raises(hazina.ConfigurationError, match=r"'policies': open_status .*got"):
        policies_check(open_status=open_status, registry=registry)


def test_policies_check_accepts_a_status_member(
    registry: hazina.Registry, check_health: CheckHealth
) -> None:
    """open_status may be given as a HealthStatus member."""
    open_breaker(registry, "payments")
    policies_check(open_status=HealthStatus.UNHEALTHY, registry=registry)

    assert check_health().status is UNHEALTHY


def test_rate_limiters_that_rejected_since_the_last_run_are_listed(
    registry: hazina.Registry, check_health: CheckHealth
) -> None:
    """Limiters that rejected calls since the previous run are named; the status stays."""
    if not hasattr(registry, "rate_limiter"):
        pytest.skip("rate limiters are not in this build yet")
    # Looked up by name: rate limiting is built alongside, so neither may exist for mypy.
    factory: Callable[..., Any] = getattr(registry, "rate_limiter")  # noqa: B009
    rate_limited: Callable[..., Any] = getattr(hazina, "rate_limited")  # noqa: B009
    limiter = factory("search", rate=1, per=60)
    factory("uploads", rate=1, per=60)
    policies_check(registry=registry)
    guarded = rate_limited("search", registry=registry)(lambda: "ok")
    guarded()
    with pytest.raises(hazina.RateLimitExceeded):
        guarded()

    first = check_health().entries["policies"]
    second = check_health().entries["policies"]

    assert first.status is HEALTHY
    assert first.data is not None
    assert first.data["rate_limited"] == ["search"]
    assert first.description is not None
    assert "rate limiters rejecting calls: search" in first.description
    assert second.data is not None
    assert second.data["rate_limited"] == []
    assert limiter.name == "search"
