"""What a cache reports: its stats and its events."""

from __future__ import annotations

from collections.abc import Hashable

import attrs

from .expiry import Priority


@attrs.frozen
class CacheStats:
    """A cache's counters since creation or ``reset()``, and its size now.

    Every lookup is one of: a hit, a miss (it loaded, or ``get`` found nothing), or
    coalesced (it waited for a load of the same key already in flight). ``hit_rate``
    is ``hits / (hits + misses)``, 0.0 before any. ``loads`` counts runs of the
    function or factory, ``load_errors`` those that raised or were cancelled.
    ``evictions`` are entries removed to make room; ``expirations`` entries found or
    dropped past their expiry. ``size`` counts live entries, and with ``stale_if_error``
    also the expired ones still kept (they count toward ``max_size`` like any entry).
    """

    hits: int
    misses: int
    hit_rate: float
    loads: int
    load_errors: int
    coalesced: int
    evictions: int
    expirations: int
    size: int
    #: Round trips to a shared backend that failed (always 0 in memory).
    backend_errors: int = 0
    #: Background refreshes started (``refresh_after``); each also counts in ``loads``,
    #: and in ``load_errors`` if it fails.
    refreshes: int = 0
    #: Calls answered with a stale value because their load failed (``stale_if_error``).
    stale_served: int = 0


@attrs.frozen
class CacheEvicted:
    """The cache ``name`` evicted ``key`` (of ``priority``) to make room for another entry."""

    name: str
    key: Hashable
    priority: Priority
    #: Whether a dry-run policy made this decision (nothing was refused or delayed).
    dry_run: bool = attrs.field(default=False, kw_only=True)
