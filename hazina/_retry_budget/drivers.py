"""A retry budget drives no calls: retry policies' drivers deposit into it directly.

The retry drivers inline :meth:`RetryBudget.deposit` (one comparison and one lock-free
``next``) on their first attempt, and ask :meth:`RetryBudget.withdraw` before a retry;
this module only names that contract for readers looking for the kind's drivers.
"""

from __future__ import annotations

from .policy import RetryBudget

__all__ = ["RetryBudget"]
