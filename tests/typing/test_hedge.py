"""Locks down the hedge's typing: ``mypy --strict`` checks this file, pytest runs it.

Every ``assert_type`` must hold for mypy. Lines that must be *rejected* carry a
``# type: ignore[code]``; with ``warn_unused_ignores`` on, mypy fails if hazina's types
stopped catching the mistake. The ``check_*`` functions are only type-checked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, assert_type

import hazina

REGISTRY = hazina.Registry()


@hazina.hedge("typing.search", registry=REGISTRY, delay=0.5, max_hedges=2, on=OSError)
def search(q: str, *, page: int = 1) -> list[str]:
    """Search for ``q``."""
    return [q] * page


@hazina.hedge("typing.fetch", registry=REGISTRY, delay=lambda: 0.25)
async def fetch(url: str) -> bytes:
    """Pretend to fetch ``url``."""
    return url.encode()


class Client:
    """A class with a hedged method."""

    @hazina.hedge("typing.Client.get", registry=REGISTRY, delay=1)
    async def get(self, n: int) -> int:
        """Return ``n``."""
        return n


def check_decorated_functions_keep_their_types() -> None:
    """Parameters and results survive; ``policy`` is a Hedge."""
    assert_type(search("q", page=2), list[str])
    assert_type(search.policy, hazina.Hedge)
    fetching = fetch("u")
    assert_type(fetching, Coroutine[Any, Any, bytes]).close()
    getting = Client().get(2)
    assert_type(getting, Coroutine[Any, Any, int]).close()
    assert_type(Client().get.policy, hazina.Hedge)


def check_policy_api() -> None:
    """The factory and the stats have their documented types."""
    policy = REGISTRY.hedge("typing.search")
    assert_type(policy, hazina.Hedge)
    assert_type(policy.stats(), hazina.HedgeStats)
    assert_type(policy.stats().hedge_wins, int)
    assert_type(policy.config, hazina.HedgeConfig)


def check_mistakes_are_caught() -> None:
    """Wrong options and arguments are type errors."""
    hazina.hedge("typing.bad", delay="1s")  # type: ignore[call-overload]
    hazina.hedge("typing.bad", delay=1, max_hedges=1.5)  # type: ignore[call-overload]
    hazina.hedge("typing.bad", delay=lambda n: n)  # type: ignore[arg-type, misc]
    REGISTRY.hedge("typing.bad", dela=1)  # type: ignore[call-arg]
    search(1)  # type: ignore[arg-type]
    wrong: hazina.Retry = search.policy  # type: ignore[assignment]
    del wrong


def test_typed_declarations_run() -> None:
    """The declarations above work at run time too."""
    assert search("q", page=2) == ["q", "q"]
    assert asyncio.run(fetch("u")) == b"u"
    assert asyncio.run(Client().get(3)) == 3
