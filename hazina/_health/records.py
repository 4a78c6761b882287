"""What health checks say: statuses, one check's result, the report over all of them."""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from typing import Any

import attrs


class HealthStatus(enum.StrEnum):
    """How fit to serve a check (or the whole process) is."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"


HEALTHY = HealthStatus.HEALTHY
DEGRADED = HealthStatus.DEGRADED
UNHEALTHY = HealthStatus.UNHEALTHY

#: Badness, for "worst wins".
RANK = {HEALTHY: 0, DEGRADED: 1, UNHEALTHY: 2}

#: What a check that raised shows instead of its exception's message when details are off.
HIDDEN_DESCRIPTION = "the check raised an exception (details hidden)"


def _data(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    # A private copy, so a check that reuses its dict cannot rewrite past reports.
    return None if value is None else dict(value)


@attrs.frozen
class HealthResult:
    """What a check may return when ``True``/``False`` says too little.

    Args:
        status: A :class:`HealthStatus` (or its string value).
        description: A short human-readable explanation.
        data: Extra facts for dashboards (JSON-ready values serialise as they are).
    """

    status: HealthStatus = attrs.field(converter=HealthStatus)
    description: str | None = None
    data: dict[str, Any] | None = attrs.field(default=None, converter=_data)


@attrs.frozen
class HealthEntry:
    """One check's part of a report.

    ``error`` is the exception the check raised (``None`` when it returned, or timed
    out); ``duration`` is in seconds; a non-critical check that failed still shows
    ``unhealthy`` here and only lowers the report to ``degraded``.
    """

    status: HealthStatus
    description: str | None
    duration: float
    error: BaseException | None
    data: dict[str, Any] | None
    tags: tuple[str, ...]

    def to_dict(self, *, show_details: bool = True) -> dict[str, Any]:
        """The entry as JSON-ready data; without details, no ``error``/``data`` and no
        exception message."""
        entry: dict[str, Any] = {
            "status": self.status.value,
            "description": self.description,
            "duration": self.duration,
            "tags": list(self.tags),
        }
        if show_details:
            entry["data"] = self.data
            entry["error"] = None if self.error is None else _describe(self.error)
        elif self.error is not None:
            entry["description"] = HIDDEN_DESCRIPTION
        return entry


@attrs.frozen
class HealthReport:
    """The outcome of one run of the selected checks.

    Attributes:
        status: The worst of the entries (a failing non-critical check counts as
            ``degraded``); ``healthy`` when no check was selected.
        duration: Seconds the whole run took.
        entries: ``{name: HealthEntry}`` in registration order.
    """

    status: HealthStatus
    duration: float
    entries: Mapping[str, HealthEntry]

    def to_dict(self, *, show_details: bool = True) -> dict[str, Any]:
        """``{"status", "duration", "checks": {name: {...}}}``, JSON-ready.

        Args:
            show_details: Include each check's ``error`` and ``data``, and the message
                of a check that raised. Off for anything the public can reach.
        """
        return {
            "status": self.status.value,
            "duration": self.duration,
            "checks": {
                name: entry.to_dict(show_details=show_details)
                for name, entry in self.entries.items()
            },
        }


@attrs.frozen
class HealthCheckStats:
    """A health check's counters since creation or ``reset()``.

    ``failures`` counts runs that ended ``unhealthy`` (timeouts included);
    ``timeouts`` the runs cut off at the timeout. ``status`` and ``last_duration``
    (seconds) describe the latest run, ``None`` before the first.
    """

    runs: int
    status: HealthStatus | None
    failures: int
    timeouts: int
    last_duration: float | None


@attrs.frozen
class HealthStatusChanged:
    """A check's status differs from its previous run's (``old`` is ``None`` on its
    first run after creation or ``reset()``)."""

    name: str
    old: HealthStatus | None
    new: HealthStatus
    #: Whether a dry-run policy made this decision (nothing was refused or delayed).
    dry_run: bool = attrs.field(default=False, kw_only=True)

    def log_level(self) -> int:
        """Getting worse (or starting anywhere but healthy) warns; getting better informs."""
        worse = RANK[self.new] > (0 if self.old is None else RANK[self.old])
        return logging.WARNING if worse else logging.INFO


def _describe(error: BaseException) -> str:
    message = str(error)
    return f"{type(error).__name__}: {message}" if message else type(error).__name__
