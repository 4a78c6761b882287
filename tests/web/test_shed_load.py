"""ShedLoadMiddleware: 503 with Retry-After while its breaker is open or its bulkhead is
full, behind a real uvicorn server."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import hazina
from hazina.asgi import ShedLoadMiddleware
from hazina.testing import FakeClock


def eventually(read: Callable[[], Any], **expected: int) -> Any:
    """``read()`` once its fields equal ``expected``, within a few seconds.

    The server records an outcome after sending the answer, so the client may read the
    answer first.
    """
    deadline = time.monotonic() + 5
    while True:
        value = read()
        if all(getattr(value, field) == want for field, want in expected.items()):
            return value
        assert time.monotonic() < deadline, value
        time.sleep(0.01)


def answering(status: int) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"app"})

    return app


def test_an_open_breaker_sheds_requests_with_503(
    registry: hazina.Registry, clock: FakeClock, asgi_server: tuple[str, Any]
) -> None:
    """5xx answers open the breaker; then 503 with Retry-After until it probes again."""
    base, target = asgi_server
    registry.circuit_breaker("app", failure_threshold=2, open_for=10)
    app = answering(500)
    target.app = ShedLoadMiddleware(app, circuit_breaker="app", registry=registry)
    assert [httpx.get(base).status_code for _ in range(2)] == [500, 500]
    clock.advance(0.5)
    shed = httpx.get(base)
    assert shed.status_code == 503
    assert shed.headers["retry-after"] == "10"
    assert shed.json() == {"detail": "service unavailable"}
    clock.advance(10)
    assert httpx.get(base).text == "app"  # the probe reaches the app
    stats = eventually(lambda: registry.stats()["circuit_breaker"]["app"], failures=3)
    assert stats.rejections == 1


def test_errors_raised_by_the_app_are_failures_and_still_raised(
    registry: hazina.Registry,
) -> None:
    """The server sees the app's own error; the breaker counts it."""

    async def broken(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("bug")

    middleware = ShedLoadMiddleware(
        broken, circuit_breaker=registry.circuit_breaker("app", failure_threshold=1)
    )

    async def call() -> None:
        async def receive() -> dict[str, Any]:
            return {}

        async def send(message: Any) -> None:
            pass

        await middleware({"type": "http"}, receive, send)

    with pytest.raises(RuntimeError, match="bug"):
        asyncio.run(call())
    assert registry.stats()["circuit_breaker"]["app"].failures == 1


def test_successes_and_client_errors_keep_the_breaker_closed(
    registry: hazina.Registry, asgi_server: tuple[str, Any]
) -> None:
    """A 404 is no sign of overload."""
    base, target = asgi_server
    breaker = registry.circuit_breaker("app", failure_threshold=1)
    target.app = ShedLoadMiddleware(answering(404), circuit_breaker=breaker)
    assert [httpx.get(base).status_code for _ in range(3)] == [404, 404, 404]
    assert eventually(breaker.stats, successes=3).failures == 0


def test_non_http_scopes_pass_through_untouched(registry: hazina.Registry) -> None:
    """Lifespan messages reach the app even while the breaker is open."""
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope)

    breaker = registry.circuit_breaker("app")
    breaker.force_open()
    middleware = ShedLoadMiddleware(app, circuit_breaker=breaker)

    async def nothing(*args: Any) -> Any:
        return {}

    scope = {"type": "lifespan"}
    asyncio.run(middleware(scope, nothing, nothing))
    assert seen == [scope]


def test_a_middleware_with_nothing_to_shed_by_is_a_configuration_error() -> None:
    """Neither a bulkhead nor a breaker: refused at construction."""
    with pytest.raises(hazina.ConfigurationError, match="bulkhead"):
        ShedLoadMiddleware(answering(200))


def test_a_full_bulkhead_sheds_requests_with_503(
    registry: hazina.Registry, asgi_server: tuple[str, Any]
) -> None:
    """With every slot taken by a request in progress, the next one is answered 503 at
    once, without reaching the app; a full bulkhead is no failure for the breaker."""
    base, target = asgi_server
    entered = threading.Event()  # set on the server's thread, awaited on the test's
    release = asyncio.Event()
    loop: list[asyncio.AbstractEventLoop] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        loop.append(asyncio.get_running_loop())
        entered.set()
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"app"})

    bulkhead = registry.bulkhead("app", max_concurrent=1)
    breaker = registry.circuit_breaker("app", failure_threshold=1)
    target.app = ShedLoadMiddleware(app, bulkhead="app", circuit_breaker=breaker, registry=registry)

    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=base) as http:
            first = asyncio.create_task(http.get("/"))
            assert await asyncio.to_thread(entered.wait, 10)
            shed = await http.get("/")
            assert shed.status_code == 503
            assert shed.headers["retry-after"] == "1"
            loop[0].call_soon_threadsafe(release.set)
            assert (await first).text == "app"

    asyncio.run(asyncio.wait_for(scenario(), 10))
    assert bulkhead.stats().rejected == 1
    assert eventually(breaker.stats, successes=1).failures == 0
