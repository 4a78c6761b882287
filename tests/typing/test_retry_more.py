"""Locks down the typing of retry budgets, ``retry_after=``, ``attempts=None``, timedelta
durations and the block form: ``mypy --strict`` checks this file, pytest runs it.

Every ``assert_type`` must hold for mypy. Lines that must be *rejected* carry a
``# type: ignore[code]``; with ``warn_unused_ignores`` on, mypy fails if hazina's types
stopped catching the mistake. The ``check_*`` functions are only type-checked.
"""

from __future__ import annotations

import asyncio
import datetime
from typing import assert_type

import hazina

REGISTRY = hazina.Registry()
BUDGET = REGISTRY.retry_budget("typing.budget", ratio=0.1, window=datetime.timedelta(seconds=30))


def retry_after_of(outcome: object) -> float | None:
    """The wait a response-like outcome asks for."""
    return getattr(outcome, "retry_after", None)


@hazina.retry(
    "typing.fetch",
    registry=REGISTRY,
    attempts=None,
    timeout=datetime.timedelta(seconds=10),
    initial=datetime.timedelta(milliseconds=100),
    retry_after=retry_after_of,
    budget="typing.budget",
)
def fetch(url: str) -> bytes:
    """Pretend to fetch ``url``."""
    return url.encode()


def check_budget_api() -> None:
    """The budget factory and its stats have their documented types."""
    assert_type(BUDGET, hazina.RetryBudget)
    assert_type(BUDGET.stats(), hazina.RetryBudgetStats)
    assert_type(BUDGET.stats().refused, int)
    assert_type(BUDGET.config, hazina.RetryBudgetConfig)
    assert_type(BUDGET.config.window, float)
    assert_type(fetch("u"), bytes)
    assert_type(fetch.policy.config.attempts, int | None)


@hazina.rate_limited(
    "typing.limited",
    registry=REGISTRY,
    rate=1,
    per=datetime.timedelta(minutes=1),
    wait=True,
    max_wait=datetime.timedelta(seconds=5),
)
def limited() -> None:
    """Rate limiter durations take timedeltas too."""


def check_block_form() -> None:
    """``for`` yields attempts usable as context managers."""
    retrying = hazina.retrying("typing.block", registry=REGISTRY, attempts=3)
    assert_type(retrying, hazina.Retrying)
    assert_type(retrying.policy, hazina.Retry)
    for attempt in retrying:
        assert_type(attempt, hazina.Attempt)
        assert_type(attempt.number, int)
        with attempt:
            pass


async def check_async_block_form() -> None:
    """``async for`` yields attempts usable as async context managers."""
    async for attempt in hazina.retrying("typing.block", registry=REGISTRY):
        assert_type(attempt, hazina.Attempt)
        async with attempt:
            pass


def check_mistakes_are_caught() -> None:
    """Wrong options are type errors."""
    hazina.retry("typing.bad", budget=3)  # type: ignore[call-overload]
    hazina.retry("typing.bad", retry_after=5)  # type: ignore[call-overload]
    hazina.retry("typing.bad", timeout="10s")  # type: ignore[call-overload]
    hazina.retrying("typing.bad", attempts="3")  # type: ignore[arg-type]
    hazina.retrying()  # type: ignore[call-arg]
    REGISTRY.retry_budget("typing.bad", ratio="0.2")  # type: ignore[arg-type]
    REGISTRY.retry_budget("typing.bad", min_per_sec=1)  # type: ignore[call-arg]


def test_typed_declarations_run() -> None:
    """The declarations above work at run time too."""
    assert fetch("ab") == b"ab"
    assert BUDGET.stats().attempts == 1
    check_block_form()
    asyncio.run(check_async_block_form())
    assert REGISTRY.retry("typing.block").stats().calls == 2
