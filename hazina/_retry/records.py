"""What a retry policy reports: its stats and its events."""

from __future__ import annotations

import logging
from typing import ClassVar

import attrs


@attrs.frozen
class RetryStats:
    """A retry policy's counters since creation or ``reset()``."""

    calls: int
    attempts: int
    retries: int
    successes: int
    successes_after_retry: int
    give_ups: int


@attrs.frozen
class RetryScheduled:
    """Attempt ``attempt`` failed (``error``, or ``None`` for a rejected result);
    the next one follows after ``wait`` seconds."""

    name: str
    attempt: int
    wait: float
    error: BaseException | None
    #: Whether a dry-run policy made this decision (nothing was refused or delayed).
    dry_run: bool = attrs.field(default=False, kw_only=True)

    log_level: ClassVar[int] = logging.INFO


@attrs.frozen
class RetryGaveUp:
    """The retry stopped after ``attempts`` attempts and ``elapsed`` seconds."""

    name: str
    attempts: int
    elapsed: float
    error: BaseException | None
    #: Whether a dry-run policy made this decision (nothing was refused or delayed).
    dry_run: bool = attrs.field(default=False, kw_only=True)

    log_level: ClassVar[int] = logging.WARNING
