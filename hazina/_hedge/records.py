"""What a hedge policy reports: its stats and its event."""

from __future__ import annotations

import attrs


@attrs.frozen
class HedgeStats:
    """A hedge policy's counters since creation or ``reset()``."""

    #: Calls made through the policy (those still running included).
    calls: int
    #: Extra attempts started, after the delay or after a failed attempt.
    hedges: int
    #: Calls whose result came from an extra attempt rather than the first.
    hedge_wins: int


@attrs.frozen
class HedgeStarted:
    """Extra attempt number ``hedge`` (from 1) started: after the delay (``error`` is
    ``None``), or at once because an attempt failed with ``error``."""

    name: str
    hedge: int
    error: BaseException | None
    #: Whether a dry-run policy made this decision (nothing was refused or delayed).
    dry_run: bool = attrs.field(default=False, kw_only=True)
