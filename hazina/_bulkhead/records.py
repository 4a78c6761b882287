"""What a bulkhead reports: its stats and its events."""

from __future__ import annotations

from collections.abc import Hashable

import attrs


@attrs.frozen
class BulkheadStats:
    """A bulkhead's counters since creation or ``reset()``, and where it stands now.

    ``admitted`` counts calls that got a slot (at once or after waiting), ``rejected``
    those refused with :class:`~hazina.BulkheadFull`; a waiter that was cancelled
    counts in neither. ``wait_time`` is the seconds admitted waiters spent queued.
    ``active`` and ``queued`` are now (over every key); ``peak_active`` is the most
    calls that ran at once since creation or ``reset()``.
    """

    admitted: int
    rejected: int
    active: int
    queued: int
    peak_active: int
    wait_time: float


@attrs.frozen
class BulkheadRejected:
    """The bulkhead ``name`` refused a call for ``key`` after waiting ``waited`` seconds
    (0 when it found no room in the queue)."""

    name: str
    key: Hashable
    waited: float
    #: Whether a dry-run policy made this decision (nothing was refused or delayed).
    dry_run: bool = attrs.field(default=False, kw_only=True)
