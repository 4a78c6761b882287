"""Ready-made health checks: process memory, and the registry's own policies."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterable
from typing import Any, Literal

from .._core.errors import ConfigurationError
from .._core.registry import Registry, registry_or_default
from .policy import HealthCheck
from .records import DEGRADED, HEALTHY, HealthResult, HealthStatus

# Module globals so tests can point them elsewhere to exercise the fallbacks.
PROC_STATM = "/proc/self/statm"
PROC_STATUS = "/proc/self/status"


def _from_statm() -> int | None:
    # "size resident shared ...", in pages.
    with open(PROC_STATM, "rb") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _from_status() -> int | None:
    with open(PROC_STATUS, "rb") as status:
        for line in status:
            if line.startswith(b"VmRSS:"):
                value, unit = line.split()[1:3]
                assert unit.lower() == b"kb", unit
                return int(value) * 1024
    return None


def _peak_from_rusage() -> int | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Bytes on macOS, kilobytes on Linux and the BSDs.
    return peak if sys.platform == "darwin" else peak * 1024


def resident_memory() -> tuple[int | None, bool]:
    """The process's resident set size in bytes (``None`` if unknown), and whether it is
    only the peak so far (where the current size cannot be read without a dependency)."""
    for source in (_from_statm, _from_status):
        try:
            rss = source()
        except (OSError, ValueError, IndexError, AssertionError):
            continue
        if rss is not None:
            return rss, False
    return _peak_from_rusage(), True


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


def memory_check(
    *,
    max_rss_bytes: int,
    name: str = "memory",
    tags: str | Iterable[str] = (),
    registry: Registry | None = None,
) -> HealthCheck:
    """Register a check of the process's resident memory: ``degraded`` above ``max_rss_bytes``.

    Reads the current size from ``/proc`` on Linux; elsewhere it falls back to the peak
    size from :mod:`resource` (said so in the description). Its ``data`` has
    ``rss_bytes`` and ``max_rss_bytes``.

    Returns:
        The registered :class:`~hazina.HealthCheck`.
    """
    if not (
        isinstance(max_rss_bytes, int) and not isinstance(max_rss_bytes, bool) and max_rss_bytes > 0
    ):
        raise ConfigurationError(
            f"health_check {name!r}: max_rss_bytes must be a whole number of bytes "
            f"above 0, got {max_rss_bytes!r}"
        )

    def check_memory() -> HealthResult:
        rss, peak_only = resident_memory()
        data = {"rss_bytes": rss, "max_rss_bytes": max_rss_bytes}
        if rss is None:
            return HealthResult(HEALTHY, "resident memory cannot be measured here", data)
        what = "peak resident memory" if peak_only else "resident memory"
        over = rss > max_rss_bytes
        return HealthResult(
            DEGRADED if over else HEALTHY,
            f"{what} {_mib(rss)} {'above' if over else 'within'} {_mib(max_rss_bytes)}",
            data,
        )

    where = registry_or_default(registry)
    return where.health_check(name, check_memory, tags=tags)


def policies_check(
    *,
    open_status: Literal["degraded", "unhealthy"] | HealthStatus = "degraded",
    name: str = "policies",
    tags: str | Iterable[str] = (),
    registry: Registry | None = None,
) -> HealthCheck:
    """Register a check over the registry's circuit breakers and rate limiters.

    Any breaker that is not closed (open, half-open or forced open) makes the check
    ``open_status``; ``data`` has ``open_breakers`` (names), ``breakers`` (every
    breaker's state) and ``rate_limited``: the rate limiters that rejected calls since
    the check last ran. Those do not change the status: a limiter that rejects is doing
    its job (per-key limits reject abusive clients all day long).

    Returns:
        The registered :class:`~hazina.HealthCheck`.
    """
    if open_status not in (DEGRADED, HealthStatus.UNHEALTHY):
        raise ConfigurationError(
            f"health_check {name!r}: open_status must be 'degraded' or 'unhealthy', "
            f"got {open_status!r}"
        )
    status_when_open = HealthStatus(open_status)
    where = registry_or_default(registry)
    lock = threading.Lock()
    # Rejections each limiter had when the check last ran.
    seen_rejections: dict[str, int] = {}

    def rejected_since_last_run(limiters: dict[str, int]) -> list[str]:
        fresh = []
        with lock:
            for limiter, count in limiters.items():
                before = seen_rejections.get(limiter, 0)
                # A count below the one seen means the limiter was reset since.
                if (count - before if count >= before else count) > 0:
                    fresh.append(limiter)
            seen_rejections.clear()
            seen_rejections.update(limiters)
        return fresh

    def check_policies() -> HealthResult:
        states: dict[str, str] = {}
        rejections: dict[str, int] = {}
        for policy in where:
            if policy.kind == "circuit_breaker":
                states[policy.name] = str(policy.stats().state)
            elif policy.kind == "rate_limiter":
                # Whatever limiter implementation is present; counted if it counts.
                count = getattr(policy.stats(), "rejected", None)
                if isinstance(count, int):
                    rejections[policy.name] = count
        open_breakers = [breaker for breaker, state in states.items() if state != "closed"]
        rate_limited = rejected_since_last_run(rejections)
        data: dict[str, Any] = {
            "open_breakers": open_breakers,
            "breakers": states,
            "rate_limited": rate_limited,
        }
        if open_breakers:
            description = "circuit breakers not closed: " + ", ".join(
                f"{breaker} ({states[breaker]})" for breaker in open_breakers
            )
        else:
            count = len(states)
            description = f"{count} circuit breaker{'' if count == 1 else 's'} closed"
        if rate_limited:
            description += "; rate limiters rejecting calls: " + ", ".join(rate_limited)
        return HealthResult(status_when_open if open_breakers else HEALTHY, description, data)

    return where.health_check(name, check_policies, tags=tags)
