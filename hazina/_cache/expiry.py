"""When a cache entry stops being served, and how hard the cache holds on to it.

Entries live on the policy's monotonic clock, which has no calendar: ``expires_at``
given as a wall-clock time (a datetime, or epoch seconds) is turned into a monotonic
deadline once, when the entry is stored, as ``now + (expires_at - time.time())``. A
wall clock that is later stepped (NTP, DST, an operator) therefore moves no stored
deadline, and a datetime is read in its own timezone (a naive one as local time, as
:meth:`datetime.timestamp` reads it).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal, TypeAlias

import attrs

from .._core.validation import InvalidValue, is_finite_number, one_of, optional_duration

Priority: TypeAlias = Literal["low", "normal", "high", "never_remove"]

#: Priority names, from first evicted to never evicted; an entry's rank is its index.
PRIORITIES: tuple[Priority, ...] = ("low", "normal", "high", "never_remove")
NEVER_REMOVE = PRIORITIES.index("never_remove")
_RANKS = {name: rank for rank, name in enumerate(PRIORITIES)}

#: The deadline of an entry that never expires. Always this very object, so the hot
#: path can skip the clock with an identity test (any other value is compared as usual).
NEVER = math.inf

#: A point in time: a datetime, or seconds since the epoch.
When: TypeAlias = datetime | float
#: Absolute expiry: a point in time, or a function of the value giving one (or ``None``).
ExpiresAt: TypeAlias = When | Callable[[Any], When | None]


def _is_epoch(value: object) -> bool:
    return is_finite_number(value) and value >= 0


def valid_expires_at(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None or isinstance(value, datetime) or _is_epoch(value) or callable(value):
        return
    raise InvalidValue(
        attribute.name,
        value,
        "None, a datetime, epoch seconds (a number of 0 or more), or a function of the "
        "value returning one of those",
    )


@attrs.frozen(kw_only=True)
class EntryOptions:
    """How one entry expires and how hard it is kept: the policy's, or one ``set``'s."""

    ttl: float | None = attrs.field(default=None, validator=optional_duration)
    sliding: float | None = attrs.field(default=None, validator=optional_duration)
    expires_at: ExpiresAt | None = attrs.field(default=None, validator=valid_expires_at)
    priority: Priority = attrs.field(default="normal", validator=one_of(*PRIORITIES))
    rank: int = attrs.field(init=False)

    @rank.default
    def _rank(self) -> int:
        # Defaults are computed before validators run: an unknown name gets a rank
        # here, and its ConfigurationError from the validator right after.
        return _RANKS.get(self.priority, -1)

    def expiry(self, value: object, now: float) -> tuple[float, float | None, float]:
        """``(deadline, sliding, cap)`` for ``value`` stored at monotonic ``now``.

        ``cap`` is the absolute expiry (``ttl`` and ``expires_at``, whichever comes
        first; :data:`NEVER` for none); ``deadline`` is when the entry stops being served,
        which sliding expiry keeps pushing back on reads, never past ``cap``.
        """
        cap = NEVER if self.ttl is None else now + self.ttl
        if self.expires_at is not None:
            when = self.expires_at(value) if callable(self.expires_at) else self.expires_at
            if when is not None:
                # The one place wall-clock time meets the monotonic clock: see module doc.
                cap = min(cap, now + (_epoch_seconds(when) - time.time()))
        deadline = cap if self.sliding is None else min(now + self.sliding, cap)
        return deadline, self.sliding, cap


def _epoch_seconds(when: object) -> float:
    if isinstance(when, datetime):
        return when.timestamp()
    if _is_epoch(when):
        return float(when)  # type: ignore[arg-type]
    raise TypeError(
        f"expires_at gave {when!r}; expected None, a datetime or epoch seconds (a number)"
    )
