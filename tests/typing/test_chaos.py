"""Locks down chaos and reconfigure typing: ``mypy --strict`` checks this file, pytest runs it.

Every ``assert_type`` must hold for mypy. Lines that must be *rejected* carry a
``# type: ignore[code]``; with ``warn_unused_ignores`` on, mypy fails if hazina's types
stopped catching the mistake. The ``check_*`` functions are only type-checked.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Coroutine
from typing import Any, assert_type

import hazina
import hazina.config

REGISTRY = hazina.Registry()


@hazina.chaos("typing.stock", registry=REGISTRY, error=ConnectionError, enabled=False)
def stock(sku: str) -> int:
    """How many of ``sku``."""
    return len(sku)


@hazina.chaos("typing.astock", registry=REGISTRY, result=0, enabled=False)
async def astock(sku: str) -> int:
    """How many of ``sku``, asynchronously."""
    return len(sku)


def check_decorated_functions_keep_their_types() -> None:
    """Parameters and results survive; ``policy`` is a Chaos."""
    assert_type(stock("a"), int)
    assert_type(stock.policy, hazina.Chaos)
    fetching = astock("a")
    assert_type(fetching, Coroutine[Any, Any, int]).close()


def check_policy_api() -> None:
    """The factory, the switch, the stats and reconfigure have their documented types."""
    policy = REGISTRY.chaos("typing.stock")
    assert_type(policy, hazina.Chaos)
    assert_type(policy.enable(), None)
    assert_type(policy.stats(), hazina.ChaosStats)
    assert_type(policy.config, hazina.ChaosConfig)
    assert_type(policy.reconfigure(error_rate=0.5), None)
    assert_type(REGISTRY.chaos("typing.slow", latency=datetime.timedelta(seconds=1)), hazina.Chaos)
    assert_type(REGISTRY.reconfigure("chaos", "typing.stock", latency=1), None)
    assert_type(REGISTRY.configure({"retry": {"x": {"attempts": 2}}}), None)
    assert_type(hazina.config.from_env(), hazina.config.Configuration)


def check_mistakes_are_caught() -> None:
    """Wrong options and arguments are type errors."""
    hazina.chaos("typing.bad", error_rate="high")  # type: ignore[call-overload]
    hazina.chaos("typing.bad", errors=ValueError)  # type: ignore[call-overload]
    REGISTRY.chaos("typing.bad", sed=1)  # type: ignore[call-arg]
    stock(1)  # type: ignore[arg-type]


def test_typed_declarations_run() -> None:
    """The declarations above work at run time too."""
    assert stock("ab") == 2
    assert asyncio.run(astock("abc")) == 3
