"""Locks down the typing of ``hazina.httpx``, ``hazina.asgi`` and ``hazina.wsgi``.

``mypy --strict`` checks this file and pytest runs it. Every ``assert_type`` must hold;
lines that must be *rejected* carry a ``# type: ignore[code]``, which
``warn_unused_ignores`` turns into a failure if hazina's types stop catching them.
"""

from __future__ import annotations

import datetime
from typing import Any, assert_type

import httpx

import hazina
import hazina.asgi
import hazina.httpx
import hazina.wsgi

REGISTRY = hazina.Registry()


async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    """An ASGI app that answers nothing."""


def wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
    """A WSGI app that answers nothing."""
    return []


def test_transports_take_each_policy_s_options() -> None:
    """The options are the decorators' keywords, checked as such."""
    transport = hazina.httpx.Transport(
        "typing.api",
        registry=REGISTRY,
        retry={"attempts": 5, "max_delay": 10.0},
        circuit_breaker={"failure_threshold": 3},
        rate_limit={"rate": 10, "per": 1},
        timeout=2.5,
        retry_methods={"GET", "PUT"},
        retry_statuses=(503,),
    )
    assert_type(transport.transport, httpx.BaseTransport)
    client = httpx.Client(transport=transport)
    client.close()
    hazina.httpx.Transport("typing.td", registry=REGISTRY, timeout=datetime.timedelta(seconds=3))


def rejected_options() -> None:
    """Never called: mypy must reject each line."""
    hazina.httpx.Transport("typing.bad", retry={"attempt": 5})  # type: ignore[arg-type]
    hazina.httpx.Transport("typing.bad", timeout="5")  # type: ignore[arg-type]
    hazina.asgi.RateLimitMiddleware(asgi_app, 5)  # type: ignore[arg-type]


def test_async_transport_goes_with_the_async_client() -> None:
    """AsyncTransport is an httpx async transport, and only that."""
    transport = hazina.httpx.AsyncTransport("typing.async-api", registry=REGISTRY, retry=None)
    assert_type(transport.transport, httpx.AsyncBaseTransport)
    httpx.AsyncClient(transport=transport)
    httpx.Client(transport=transport)  # type: ignore[arg-type]


def test_parse_retry_after_is_optional_seconds() -> None:
    """Seconds, or None for nothing readable."""
    assert_type(hazina.httpx.parse_retry_after("5"), float | None)


def test_middlewares_take_an_app_and_a_limiter() -> None:
    """A limiter by name or as the policy; keys are functions of the scope or environ."""
    limiter = REGISTRY.rate_limiter("typing.web", rate=5)
    hazina.asgi.RateLimitMiddleware(asgi_app, limiter, key=lambda scope: scope["path"])
    hazina.wsgi.RateLimitMiddleware(wsgi_app, "typing.web", registry=REGISTRY)
    breaker = REGISTRY.circuit_breaker("typing.app")
    hazina.asgi.ShedLoadMiddleware(asgi_app, circuit_breaker=breaker)
