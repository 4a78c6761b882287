"""What a chaos policy reports: its stats and its event."""

from __future__ import annotations

from typing import Literal

import attrs


@attrs.frozen
class ChaosStats:
    """A chaos policy's counters since creation or ``reset()`` (calls made while enabled)."""

    calls: int
    errors_injected: int
    latency_injected: int
    results_injected: int


@attrs.frozen
class ChaosInjected:
    """The chaos policy ``name`` injected a fault into a call: ``"error"``, ``"latency"``
    (``seconds`` of delay) or ``"result"``."""

    name: str
    fault: Literal["error", "latency", "result"]
    seconds: float = 0.0
    #: Every event carries it; a chaos injection or a reconfigure is never a dry run.
    dry_run: bool = attrs.field(default=False, kw_only=True)
