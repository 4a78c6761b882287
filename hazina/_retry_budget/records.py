"""What a retry budget reports: its stats (it emits no events of its own)."""

from __future__ import annotations

import attrs


@attrs.frozen
class RetryBudgetStats:
    """A retry budget's counters since creation or ``reset()``.

    ``attempts`` are first attempts (the calls the retries are a ratio of), ``retries``
    the retries it allowed, ``refused`` the ones it did not.
    """

    attempts: int
    retries: int
    refused: int
