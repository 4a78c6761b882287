"""What a timeout reports: its stats and its events."""

from __future__ import annotations

import attrs


@attrs.frozen
class TimeoutStats:
    """A timeout's counters since creation or ``reset()``.

    ``calls`` counts every call, refused ones included; ``timeouts`` the calls that got
    :class:`~hazina.TimeoutExceeded` (at the deadline, or refused at once while
    ``max_abandoned`` abandoned calls still ran); ``abandoned`` the sync calls left
    running in their worker thread at the deadline (cumulative).
    """

    calls: int
    timeouts: int
    abandoned: int


@attrs.frozen
class CallTimedOut:
    """A call under the timeout ``name`` (of ``seconds``) raised ``TimeoutExceeded``.

    ``abandoned``: a sync call left running in its worker thread. ``refused``: a sync
    call refused without running, because ``max_abandoned`` abandoned calls still ran.
    """

    name: str
    seconds: float
    abandoned: bool
    refused: bool
    #: Whether a dry-run policy made this decision (nothing was refused or delayed).
    dry_run: bool = attrs.field(default=False, kw_only=True)
