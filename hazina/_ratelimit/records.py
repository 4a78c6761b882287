"""What a rate limiter reports: its stats, its status and its events."""

from __future__ import annotations

from collections.abc import Hashable

import attrs

from .limit import Limit


@attrs.frozen
class RateLimiterStats:
    """A rate limiter's counters since creation or ``reset()``.

    ``allowed`` counts admitted calls, those that waited first included; ``waited``
    and ``wait_time`` (seconds, as planned) count those that waited. ``tracked_keys``
    is the number of per-key states held (the state of calls without a key is not
    one of them); ``evicted_keys`` how many were dropped to stay within ``max_keys``;
    ``backend_errors`` how many round trips to a shared backend failed (0 in memory).
    """

    allowed: int
    rejected: int
    waited: int
    wait_time: float
    tracked_keys: int
    evicted_keys: int
    backend_errors: int = 0


@attrs.frozen
class LimitStatus:
    """Where one limit stands for one key; see :class:`RateLimitStatus`."""

    limit: Limit
    remaining: float
    next_token_in: float
    full_in: float


@attrs.frozen
class RateLimitStatus:
    """Where a key stands, from :meth:`RateLimiter.status`.

    Attributes:
        key: The key asked about (``None``: calls without a key).
        remaining: Tokens a call could take now: the smallest over the limits. It may
            be fractional (the token bucket refills continuously) and is 0 while
            waiters are queued.
        next_token_in: Seconds until a call of cost 1 would be admitted (0 if it would
            be now); the largest over the limits.
        full_in: Seconds until every limit is full again if nothing more is taken.
        limits: The same for each limit, in configuration order.
    """

    key: Hashable
    remaining: float
    next_token_in: float
    full_in: float
    limits: tuple[LimitStatus, ...]

    @classmethod
    def of(cls, key: Hashable, limits: tuple[LimitStatus, ...]) -> RateLimitStatus:
        """The status of ``key`` summed up from each limit's."""
        return cls(
            key=key,
            remaining=min(limit.remaining for limit in limits),
            next_token_in=max(limit.next_token_in for limit in limits),
            full_in=max(limit.full_in for limit in limits),
            limits=limits,
        )


@attrs.frozen
class RateLimitRejected:
    """A call of ``cost`` for ``key`` was refused; ``retry_after`` as in the error."""

    name: str
    key: Hashable
    cost: float
    retry_after: float
    #: Whether a dry-run limiter made this decision: the call ran anyway.
    dry_run: bool = attrs.field(default=False, kw_only=True)


@attrs.frozen
class RateLimitDelayed:
    """A call of ``cost`` for ``key`` was queued: it runs after waiting ``wait`` seconds."""

    name: str
    key: Hashable
    cost: float
    wait: float
    #: Whether a dry-run limiter made this decision: the call ran at once.
    dry_run: bool = attrs.field(default=False, kw_only=True)
