"""Locks down the typing of ``@timeout``, ``@bulkhead`` and ``remaining()``.

``mypy --strict`` checks this file and pytest runs it. Every ``assert_type`` must hold;
lines that must be *rejected* carry a ``# type: ignore[code]``, which
``warn_unused_ignores`` turns into a failure if hazina's types stop catching them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Hashable
from typing import Any, assert_type

import hazina

REGISTRY = hazina.Registry()


@hazina.timeout("typing.price", registry=REGISTRY, seconds=1)
def price(item: str, *, currency: str = "EUR") -> float:
    """Price ``item``."""
    return float(len(item))


@hazina.timeout("typing.fetch", registry=REGISTRY, seconds=1.5, max_abandoned=2)
async def fetch(url: str) -> bytes:
    """Pretend to fetch ``url``."""
    return url.encode()


@hazina.bulkhead(
    "typing.query", registry=REGISTRY, max_concurrent=2, key=lambda tenant, sql: tenant
)
def query(tenant: str, sql: str) -> list[str]:
    """Run ``sql`` for ``tenant``."""
    return [tenant, sql]


@hazina.bulkhead("typing.render", registry=REGISTRY, max_concurrent=4, max_queue=8, max_wait=0.5)
async def render(page: int) -> str:
    """Render ``page``."""
    return str(page)


class Client:
    """A class with a timed method inside a bulkhead."""

    @hazina.bulkhead("typing.Client.get", registry=REGISTRY, max_concurrent=1)
    @hazina.timeout("typing.Client.get", registry=REGISTRY, seconds=1)
    def get(self, n: int) -> int:
        """Return ``n``."""
        return n


def check_decorated_functions_keep_their_types() -> None:
    """Parameters and results survive; ``policy`` is the kind's class."""
    assert_type(price("x", currency="USD"), float)
    assert_type(price.policy, hazina.Timeout)
    assert_type(fetch("u"), Coroutine[Any, Any, bytes]).close()
    assert_type(fetch.policy, hazina.Timeout)
    assert_type(query("t", "q"), list[str])
    assert_type(query.policy, hazina.Bulkhead)
    assert_type(render(1), Coroutine[Any, Any, str]).close()
    assert_type(Client().get(2), int)
    assert_type(Client().get.policy, hazina.Bulkhead)


def check_policy_api() -> None:
    """Factories, stats, configuration, errors and remaining() have their documented types."""
    timeout = REGISTRY.timeout("typing.price")
    assert_type(timeout, hazina.Timeout)
    assert_type(timeout.stats(), hazina.TimeoutStats)
    assert_type(timeout.stats().abandoned, int)
    assert_type(timeout.config, hazina.TimeoutConfig)
    bulkhead = REGISTRY.bulkhead("typing.query")
    assert_type(bulkhead, hazina.Bulkhead)
    assert_type(bulkhead.stats(), hazina.BulkheadStats)
    assert_type(bulkhead.stats().wait_time, float)
    assert_type(bulkhead.config, hazina.BulkheadConfig)
    assert_type(hazina.remaining(), float | None)
    assert_type(hazina.TimeoutExceeded("t", 1.0).seconds, float)
    assert_type(hazina.BulkheadFull("b").key, Hashable)
    assert_type(hazina.BulkheadFull("b").retry_after, float | None)


def check_mistakes_are_caught() -> None:
    """Wrong options and arguments are type errors."""
    hazina.timeout("typing.bad", seconds="1")  # type: ignore[call-overload]
    hazina.timeout("typing.bad", seconds=1, max_abandoned=1.5)  # type: ignore[call-overload]
    REGISTRY.timeout("typing.bad", secs=1)  # type: ignore[call-arg]
    hazina.bulkhead("typing.bad", max_concurrent="2")  # type: ignore[call-overload]
    hazina.bulkhead("typing.bad", max_concurrent=2, max_wait="1")  # type: ignore[call-overload]
    REGISTRY.bulkhead("typing.bad", limit=2)  # type: ignore[call-arg]
    price(1)  # type: ignore[arg-type]
    wrong: hazina.Bulkhead = price.policy  # type: ignore[assignment]
    del wrong


def test_typed_declarations_run() -> None:
    """The declarations above work at run time too."""
    assert price("abc") == 3.0
    assert asyncio.run(fetch("u")) == b"u"
    assert query("t", "q") == ["t", "q"]
    assert asyncio.run(render(2)) == "2"
    assert Client().get(1) == 1
    assert REGISTRY.bulkhead("typing.Client.get").stats().admitted == 1
    assert REGISTRY.timeout("typing.Client.get").stats().calls == 1
