"""Per-request cost of hazina's HTTP pieces when nothing fails, beside their peers.

``http-transport-*``: one request through an httpx transport stack whose innermost
transport answers 200 at once without I/O (the ``bare`` row is that floor). Rows:
``bare`` (the inner transport alone), ``hazina`` (:class:`hazina.httpx.Transport` with
its defaults: a retry and a per-host breaker),
``hazina_limited`` (plus a rate limit far above the request rate),
``hazina_retry_only`` (``circuit_breaker=None``: the same job as the peer), and
``httpx_retries`` (``RetryTransport`` with ``Retry(total=3)``). Timed at the transport,
not through ``httpx.Client``, whose own ~50 us per request would hide the differences.

``http-middleware-async``: one admitted request through a Starlette app with one route,
called in-process as ASGI (no server): ``bare`` (no middleware), ``hazina``
(:class:`hazina.asgi.RateLimitMiddleware`, keyed by client address, with both IETF
fields on the response) and ``slowapi`` (``SlowAPIMiddleware`` with a default limit and
``headers_enabled=True``, keyed by client address).

``http-loopback-sync``: one GET end to end, to a threaded ``http.server`` on 127.0.0.1
over a kept-alive connection: httpx bare, httpx over hazina's transport, httpx over
httpx-retries, requests bare, and requests with urllib3's ``Retry(total=3)`` adapter.
The I/O dominates; the rows show what each layer adds in context.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import requests
import requests.adapters
from httpx_retries import Retry as RetriesRetry
from httpx_retries import RetryTransport
from pytest_benchmark.fixture import BenchmarkFixture
from slowapi import Limiter
from slowapi.middleware import SlowAPIMiddleware
from slowapi.util import get_remote_address
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from urllib3.util.retry import Retry as Urllib3Retry

import hazina
import hazina.asgi
import hazina.httpx
from benchmarks.conftest import RunAsync, async_group, sync_group

SYNC = sync_group("http-transport-sync")
ASYNC = async_group("http-transport-async")
MIDDLEWARE = async_group("http-middleware-async")
LOOPBACK = sync_group("http-loopback-sync")


#: What the innermost transport answers: one response for every request, as nothing at the
#: transport level reads it; building one costs ~10 us, which would drown the rows.
OK = httpx.Response(200)


class Answer(httpx.BaseTransport):
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return OK


class AsyncAnswer(httpx.AsyncBaseTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return OK


REQUEST = httpx.Request("GET", "https://api.example.com/items/1")


def _sync_stacks() -> dict[str, httpx.BaseTransport]:
    registry = hazina.Registry()
    return {
        "bare": Answer(),
        "hazina": hazina.httpx.Transport("b", registry=registry, transport=Answer()),
        "hazina_limited": hazina.httpx.Transport(
            "l", registry=registry, transport=Answer(), rate_limit={"rate": 10**9}
        ),
        "hazina_retry_only": hazina.httpx.Transport(
            "r", registry=registry, transport=Answer(), circuit_breaker=None
        ),
        "httpx_retries": RetryTransport(transport=Answer(), retry=RetriesRetry(total=3)),
    }


def _async_stacks() -> dict[str, httpx.AsyncBaseTransport]:
    registry = hazina.Registry()
    return {
        "bare": AsyncAnswer(),
        "hazina": hazina.httpx.AsyncTransport("b", registry=registry, transport=AsyncAnswer()),
        "hazina_limited": hazina.httpx.AsyncTransport(
            "l", registry=registry, transport=AsyncAnswer(), rate_limit={"rate": 10**9}
        ),
        "hazina_retry_only": hazina.httpx.AsyncTransport(
            "r", registry=registry, transport=AsyncAnswer(), circuit_breaker=None
        ),
        "httpx_retries": RetryTransport(transport=AsyncAnswer(), retry=RetriesRetry(total=3)),
    }


@SYNC
@pytest.mark.parametrize("row", list(_sync_stacks()))
def test_transport_sync(benchmark: BenchmarkFixture, row: str) -> None:
    transport = _sync_stacks()[row]
    assert benchmark(transport.handle_request, REQUEST).status_code == 200


@ASYNC
@pytest.mark.parametrize("row", list(_async_stacks()))
def test_transport_async(run_async: RunAsync, row: str) -> None:
    transport = _async_stacks()[row]

    async def one(x: int) -> int:
        response = await transport.handle_async_request(REQUEST)
        return x if response.status_code == 200 else 0

    assert run_async(one) == 1


# -- middleware ---------------------------------------------------------------------------


def _starlette(middleware: str) -> Any:
    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hello")

    app = Starlette(routes=[Route("/", hello)])
    if middleware == "hazina":
        limiter = hazina.Registry().rate_limiter("web", rate=10**9, per=1)
        return hazina.asgi.RateLimitMiddleware(app, limiter)
    if middleware == "slowapi":
        app.state.limiter = Limiter(
            key_func=get_remote_address, default_limits=["1000000000/second"], headers_enabled=True
        )
        app.add_middleware(SlowAPIMiddleware)
    return app


@MIDDLEWARE
@pytest.mark.parametrize("row", ["bare", "hazina", "slowapi"])
def test_middleware_admitted(run_async: RunAsync, row: str) -> None:
    app = _starlette(row)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"bench")],
        "client": ("192.0.2.1", 50000),
        "server": ("bench", 80),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def one(x: int) -> int:
        statuses: list[int] = []

        async def send(message: Any) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        await app(dict(scope), receive, send)
        return x if statuses == [200] else 0

    assert run_async(one) == 1


# -- end to end over loopback -------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every client reuses its connection
    # One write per answer, sent at once: split writes meet the client's delayed ACK.
    wbufsize = 65536
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def local_server() -> Iterator[str]:
    """A threaded ``http.server`` on 127.0.0.1 answering ``ok`` to every GET."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    thread.join()
    server.server_close()


def _clients() -> dict[str, Callable[[], Any]]:
    def requests_session(retry: bool) -> Any:
        session = requests.Session()
        if retry:
            adapter = requests.adapters.HTTPAdapter(max_retries=Urllib3Retry(total=3))
            session.mount("http://", adapter)
        return session

    return {
        "httpx_bare": lambda: httpx.Client(),
        "httpx_hazina": lambda: httpx.Client(
            transport=hazina.httpx.Transport("e2e", registry=hazina.Registry())
        ),
        "httpx_retries": lambda: httpx.Client(
            transport=RetryTransport(retry=RetriesRetry(total=3))
        ),
        "requests_bare": lambda: requests_session(retry=False),
        "requests_urllib3_retry": lambda: requests_session(retry=True),
    }


@LOOPBACK
@pytest.mark.parametrize("row", list(_clients()))
def test_loopback_get(benchmark: BenchmarkFixture, row: str, local_server: str) -> None:
    client = _clients()[row]()
    try:
        assert benchmark(lambda: client.get(local_server).status_code) == 200
    finally:
        client.close()
