"""A retry budget drives no calls: retry policies' drivers deposit into it directly.

A sharing retry policy attaches its count of first-try successes (:meth:`RetryBudget.attach`),
so its hot path adds only the comparison that notices a new tenth of the window
(:meth:`RetryBudget.roll`). A failed first attempt is deposited into
``RetryBudget.first_attempts``, and every retry asks :meth:`RetryBudget.withdraw` first.
This module only names that contract for readers looking for the kind's drivers.
"""

from __future__ import annotations

from .policy import RetryBudget

__all__ = ["RetryBudget"]
