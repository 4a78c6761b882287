"""What a fallback policy reports: its stats and its event."""

from __future__ import annotations

import attrs


@attrs.frozen
class FallbackStats:
    """A fallback policy's counters since creation or ``reset()``."""

    #: Calls made through the policy (those still running included).
    calls: int
    #: Calls that failed with an error matching ``on`` and were handed to the fallback
    #: (a handler that raises in turn counts too).
    fallbacks: int


@attrs.frozen
class FallbackUsed:
    """A call failed with ``error`` and the fallback answered it instead."""

    name: str
    error: BaseException
    #: Whether a dry-run policy made this decision (nothing was refused or delayed).
    dry_run: bool = attrs.field(default=False, kw_only=True)
