"""The rate-limit middlewares, served by real servers (uvicorn for ASGI, wsgiref for WSGI)
and called by a real client: 429 with Retry-After and the IETF RateLimit fields.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import hazina
import hazina.asgi
import hazina.wsgi
from hazina.testing import FakeClock

from .conftest import raw_request

Serve = Callable[..., str]


async def hello_asgi(scope: Any, receive: Any, send: Any) -> None:
    headers = [(b"content-type", b"text/plain"), (b"x-app", b"yes")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"hello"})


def hello_wsgi(environ: Any, start_response: Any) -> list[bytes]:
    start_response("200 OK", [("content-type", "text/plain"), ("x-app", "yes")])
    return [b"hello"]


@pytest.fixture(params=["asgi", "wsgi"])
def serve(request: pytest.FixtureRequest) -> Serve:
    """``serve(limiter, **options)`` puts the app behind the middleware on a real server."""
    base, target = request.getfixturevalue(f"{request.param}_server")
    module = hazina.asgi if request.param == "asgi" else hazina.wsgi
    app = hello_asgi if request.param == "asgi" else hello_wsgi

    def start(limiter: Any, **options: Any) -> str:
        target.app = module.RateLimitMiddleware(app, limiter, **options)
        return str(base)

    return start


def test_admitted_requests_reach_the_app_and_carry_the_fields(
    registry: hazina.Registry, serve: Serve
) -> None:
    """Below the limit the app answers, with RateLimit-Policy and RateLimit added."""
    base = serve(registry.rate_limiter("web", rate=3, per=60))
    response = httpx.get(base)
    assert (response.status_code, response.text) == (200, "hello")
    assert response.headers["x-app"] == "yes"
    assert response.headers["ratelimit-policy"] == '"web";q=3;w=60'
    assert response.headers["ratelimit"] == '"web";r=2;t=20'


def test_refused_requests_get_429_with_retry_after_and_the_fields(
    registry: hazina.Registry, serve: Serve, clock: FakeClock
) -> None:
    """Over the limit: 429, Retry-After in whole seconds rounded up, nothing left."""
    base = serve(registry.rate_limiter("web", rate=2, per=3))
    assert [httpx.get(base).status_code for _ in range(2)] == [200, 200]
    clock.advance(0.25)  # the next token is 1.25 s away
    refused = httpx.get(base)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "2"
    assert refused.headers["ratelimit-policy"] == '"web";q=2;w=3'
    assert refused.headers["ratelimit"] == '"web";r=0;t=2'
    assert refused.json() == {"detail": "too many requests"}
    assert "x-app" not in refused.headers
    clock.advance(1.25)
    assert httpx.get(base).status_code == 200


def test_the_limiter_can_be_named_and_keys_chosen(registry: hazina.Registry, serve: Serve) -> None:
    """A limiter given by name is the registry's; ``key`` limits each key on its own."""
    registry.rate_limiter("per-user", rate=1, per=60)
    base = serve(
        "per-user",
        registry=registry,
        key=lambda where: where.get("HTTP_X_USER") or dict(where["headers"]).get(b"x-user"),
    )
    assert httpx.get(base, headers={"x-user": "ann"}).status_code == 200
    assert httpx.get(base, headers={"x-user": "bob"}).status_code == 200
    assert httpx.get(base, headers={"x-user": "ann"}).status_code == 429
    assert registry.rate_limiter("per-user").stats().tracked_keys == 2


def test_several_limits_are_each_a_policy_item(registry: hazina.Registry, serve: Serve) -> None:
    """Each limit has its own item in both fields, named after the limiter and its place."""
    base = serve(registry.rate_limiter("web", limits="2/second; 100/hour"))
    response = httpx.get(base)
    assert response.headers["ratelimit-policy"] == '"web/1";q=2;w=1, "web/2";q=100;w=3600'
    assert re.fullmatch(r'"web/1";r=1;t=\d+, "web/2";r=99;t=\d+', response.headers["ratelimit"])


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"BREW / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 60_000 + b"\r\nConnection: close\r\n\r\n",
        b"GET /%00%ff?\xff=\x00 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET / HTTP/1.0\r\n\r\n",
    ],
    ids=["odd-method", "huge-header", "odd-path", "no-host"],
)
def test_hostile_requests_never_get_a_500(
    registry: hazina.Registry, serve: Serve, request_bytes: bytes
) -> None:
    """Odd methods, huge headers and odd paths are the app's or the server's to judge."""
    base = serve(registry.rate_limiter("web", rate=100, per=1))
    answer = raw_request(base, request_bytes)
    status = int(answer.split(b" ", 2)[1]) if answer else None
    assert status is None or status < 500


def test_an_unknown_limiter_name_fails_at_construction(registry: hazina.Registry) -> None:
    """A middleware over a limiter that is neither there nor configured is a clear error."""
    for module in (hazina.asgi, hazina.wsgi):
        with pytest.raises(hazina.ConfigurationError, match="nowhere"):
            module.RateLimitMiddleware(hello_asgi, "nowhere", registry=registry)


# -- ASGI details no client shows ------------------------------------------------------


def _run(app: Any, scope: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def test_non_http_scopes_pass_through_untouched(registry: hazina.Registry) -> None:
    """Lifespan and websocket scopes reach the app as they came, and take no tokens."""
    seen: list[tuple[Any, Any, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((scope, receive, send))

    limiter = registry.rate_limiter("web", rate=1, per=60)
    middleware = hazina.asgi.RateLimitMiddleware(app, limiter)

    async def receive() -> dict[str, Any]:
        return {}

    async def send(message: Any) -> None:
        pass

    for kind in ("lifespan", "websocket", "lifespan"):
        scope = {"type": kind, "client": ("1.2.3.4", 5)}
        asyncio.run(middleware(scope, receive, send))
        assert seen[-1] == (scope, receive, send)
        assert seen[-1][0] is scope
    assert limiter.stats().allowed == 0


def test_requests_without_a_client_address_share_one_limit(registry: hazina.Registry) -> None:
    """A server that knows no client address (a Unix socket) still gets answers, never 500s."""
    middleware = hazina.asgi.RateLimitMiddleware(
        hello_asgi, registry.rate_limiter("web", rate=1, per=60)
    )
    first = _run(middleware, {"type": "http", "method": "GET", "path": "/", "headers": []})
    second = _run(middleware, {"type": "http", "client": None, "headers": []})
    assert [first[0]["status"], second[0]["status"]] == [200, 429]


def test_clients_are_limited_by_address_by_default(registry: hazina.Registry) -> None:
    """Two client addresses each get their own quota."""
    middleware = hazina.asgi.RateLimitMiddleware(
        hello_asgi, registry.rate_limiter("web", rate=1, per=60)
    )
    statuses = [
        _run(middleware, {"type": "http", "client": (address, 1000), "headers": []})[0]["status"]
        for address in ("10.0.0.1", "10.0.0.2", "10.0.0.1")
    ]
    assert statuses == [200, 200, 429]


def test_wsgi_clients_are_limited_by_address_by_default(registry: hazina.Registry) -> None:
    """REMOTE_ADDR is the default key; a missing one shares the keyless limit."""
    middleware = hazina.wsgi.RateLimitMiddleware(
        hello_wsgi, registry.rate_limiter("web", rate=1, per=60)
    )
    statuses: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        statuses.append(status)

    def call(environ: dict[str, Any]) -> None:
        middleware(environ, start_response)

    for environ in (
        {"REMOTE_ADDR": "10.0.0.1"},
        {"REMOTE_ADDR": "10.0.0.2"},
        {},
        {"REMOTE_ADDR": ""},
    ):
        call(environ)
    call({"REMOTE_ADDR": "10.0.0.1"})
    assert [status[:3] for status in statuses] == ["200", "200", "200", "429", "429"]


def test_a_limiter_on_redis_limits_without_blocking_the_event_loop(redis_url: str) -> None:
    """A shared limiter refuses across processes; an admitted ASGI response then carries
    RateLimit-Policy only, as reading the key's standing would block the loop."""
    from hazina.redis import RedisBackend

    backend = RedisBackend.from_url(redis_url)
    registry = hazina.Registry(backend=backend)
    limiter = registry.rate_limiter("web-shared", rate=1, per=60)
    middleware = hazina.asgi.RateLimitMiddleware(hello_asgi, limiter)
    scope = {"type": "http", "client": ("10.9.9.9", 1), "headers": []}
    admitted, refused = _run(middleware, scope), _run(middleware, scope)
    assert admitted[0]["status"] == 200
    names = [name for name, _ in admitted[0]["headers"]]
    assert b"ratelimit-policy" in names
    assert b"ratelimit" not in names
    assert refused[0]["status"] == 429
    assert re.fullmatch(
        rb'"web-shared";r=0;t=(59|60|61)', dict(refused[0]["headers"])[b"ratelimit"]
    )


def test_the_middlewares_need_nothing_beyond_the_standard_library() -> None:
    """hazina.asgi and hazina.wsgi import with httpx and every web framework absent."""
    blocked = ["httpx", "httpcore", "starlette", "flask", "werkzeug", "django", "uvicorn"]
    code = (
        "import sys\n"
        f"for name in {blocked!r}: sys.modules[name] = None\n"
        "import hazina.asgi, hazina.wsgi\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
