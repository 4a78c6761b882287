"""hazina.httpx transports: what is retried, how long it waits, what the breaker and the
limiter see, and that nothing is left open.

Scripted servers are ``httpx.MockTransport`` handlers; time is the registry's fake clock,
so a wait shows as the clock moving. Every scenario runs with the sync and async transport.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

import hazina
from hazina.httpx import AsyncTransport, Transport
from hazina.testing import FakeClock

Handler = Callable[[httpx.Request], httpx.Response]


class Client:
    """Sends requests through a hazina transport, with httpx's sync or async client."""

    def __init__(self, is_async: bool, registry: hazina.Registry) -> None:
        self.is_async = is_async
        self.registry = registry
        self._runner = asyncio.Runner() if is_async else None

    def __repr__(self) -> str:
        return "async" if self.is_async else "sync"

    def transport(self, inner: Any = None, **options: Any) -> Any:
        options.setdefault("registry", self.registry)
        kind = AsyncTransport if self.is_async else Transport
        return kind("api", transport=inner, **options)

    def mock(self, handler: Handler, **options: Any) -> Any:
        return self.transport(httpx.MockTransport(handler), **options)

    def send(self, transport: Any, method: str, url: str) -> httpx.Response:
        """The response, read to the end."""
        if self._runner is None:
            with httpx.Client(transport=transport) as client:
                return client.request(method, url)

        async def run() -> httpx.Response:
            async with httpx.AsyncClient(transport=transport) as client:
                return await client.request(method, url)

        return self._runner.run(run())

    def close(self) -> None:
        if self._runner is not None:
            self._runner.close()


@pytest.fixture(params=["sync", "async"])
def client(request: pytest.FixtureRequest, registry: hazina.Registry) -> Iterator[Client]:
    """A client over the sync or the async transport."""
    made = Client(request.param == "async", registry)
    yield made
    made.close()


class Script:
    """A scripted server: answers from a list, one per request, and records the requests."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        # A fresh response each time: a client takes over the stream of one it is given.
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    @property
    def methods(self) -> list[str]:
        return [request.method for request in self.requests]


def busy(
    status: int = 503, retry_after: str | None = None, body: bytes = b"busy"
) -> httpx.Response:
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    return httpx.Response(status, headers=headers, content=body)


OK = httpx.Response(200, content=b"ok")


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_retry_statuses_are_retried_for_idempotent_methods(client: Client, status: int) -> None:
    """A GET answered 429/502/503/504 is sent again, and the final answer returned."""
    script = Script(busy(status), busy(status), OK)
    response = client.send(client.mock(script), "GET", "http://api.test/")
    assert (response.status_code, response.content) == (200, b"ok")
    assert script.methods == ["GET"] * 3


def test_retry_statuses_are_not_retried_for_other_methods(client: Client) -> None:
    """A POST answered 503 may have done its work: it is returned, not sent again."""
    script = Script(busy(503), OK)
    response = client.send(client.mock(script), "POST", "http://api.test/")
    assert (response.status_code, response.content) == (503, b"busy")
    assert script.methods == ["POST"]


def test_retry_methods_choose_what_is_retried(client: Client) -> None:
    """``retry_methods`` widens (or narrows) the methods retried after a retry status."""
    script = Script(busy(503), OK)
    transport = client.mock(script, retry_methods={"post"})
    assert client.send(transport, "POST", "http://api.test/").status_code == 200
    assert (
        client.send(
            client.mock(Script(busy(503), OK), retry_methods=()), "GET", "http://api.test/"
        ).status_code
        == 503
    )


def test_retry_after_in_seconds_is_the_wait_floor(client: Client, clock: FakeClock) -> None:
    """The wait before the next attempt is at least the response's Retry-After."""
    script = Script(busy(429, "7"), OK)
    started = clock.now()
    assert client.send(client.mock(script), "GET", "http://api.test/").status_code == 200
    assert clock.now() - started >= 7


def test_retry_after_as_an_http_date_is_the_wait_floor(client: Client, clock: FakeClock) -> None:
    """An HTTP-date Retry-After asks for the time until that date."""
    when = email.utils.formatdate(time.time() + 12, usegmt=True)
    script = Script(busy(503, when), OK)
    started = clock.now()
    assert client.send(client.mock(script), "GET", "http://api.test/").status_code == 200
    assert clock.now() - started >= 10


def test_a_retry_after_beyond_max_delay_returns_the_response_at_once(
    client: Client, clock: FakeClock
) -> None:
    """The server asks for longer than the retry would wait: its answer is the result."""
    script = Script(busy(503, "3600", b"come back in an hour"), OK)
    started = clock.now()
    transport = client.mock(script, retry={"max_delay": 60})
    response = client.send(transport, "GET", "http://api.test/")
    assert (response.status_code, response.content) == (503, b"come back in an hour")
    assert response.headers["retry-after"] == "3600"
    assert clock.now() == started
    assert len(script.requests) == 1
    assert client.registry.stats()["retry"]["api"].give_ups == 1


def test_when_attempts_run_out_the_last_response_is_returned(client: Client) -> None:
    """After the last attempt the retry status itself is the answer, body intact."""
    script = Script(busy(502, body=b"first"), busy(502, body=b"second"), busy(502, body=b"last"))
    response = client.send(client.mock(script), "GET", "http://api.test/")
    assert (response.status_code, response.content) == (502, b"last")
    assert len(script.requests) == 3


@pytest.mark.parametrize(
    "error",
    [httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"), httpx.PoolTimeout("full")],
)
def test_errors_before_sending_are_retried_for_every_method(
    client: Client, error: Exception
) -> None:
    """The server never saw the request, so even a POST is safe to send again."""
    script = Script(error, OK)
    assert client.send(client.mock(script), "POST", "http://api.test/").status_code == 200
    assert script.methods == ["POST", "POST"]


@pytest.mark.parametrize(
    "error",
    [httpx.ReadTimeout("slow"), httpx.ReadError("reset"), httpx.RemoteProtocolError("eof")],
)
def test_errors_after_sending_are_retried_only_for_retry_methods(
    client: Client, error: Exception
) -> None:
    """The server may have acted on the request: a GET is sent again, a POST is not."""
    script = Script(error, OK)
    assert client.send(client.mock(script), "GET", "http://api.test/").status_code == 200
    post = Script(error, OK)
    with pytest.raises(type(error)):
        client.send(client.mock(post), "POST", "http://api.test/")
    assert post.methods == ["POST"]


def test_an_error_that_outlasts_the_attempts_is_raised_as_itself_with_a_note(
    client: Client,
) -> None:
    """The caller sees httpx's own error type, with the retry's give-up note on it."""
    script = Script(httpx.ConnectError("refused"))
    with pytest.raises(httpx.ConnectError) as raised:
        client.send(client.mock(script), "GET", "http://api.test/")
    assert "gave up after 3 attempts" in "".join(raised.value.__notes__)
    assert len(script.requests) == 3


def test_other_errors_are_not_retried(client: Client) -> None:
    """A mistake (an unsupported scheme, a bug in a handler) fails at once."""
    script = Script(httpx.UnsupportedProtocol("gopher"), OK)
    with pytest.raises(httpx.UnsupportedProtocol):
        client.send(client.mock(script), "GET", "http://api.test/")
    assert len(script.requests) == 1


def test_retry_none_sends_each_request_once(client: Client) -> None:
    """Without a retry policy a retry status is simply returned."""
    script = Script(busy(503), OK)
    response = client.send(client.mock(script, retry=None), "GET", "http://api.test/")
    assert response.status_code == 503
    assert "retry" not in client.registry.stats() or "api" not in client.registry.stats()["retry"]


def test_failure_statuses_count_as_breaker_failures(client: Client) -> None:
    """5xx answers open the breaker, which then refuses without sending."""
    script = Script(busy(500))
    transport = client.mock(
        script, retry=None, circuit_breaker={"failure_threshold": 2}, per_host=False
    )
    for _ in range(2):
        assert client.send(transport, "GET", "http://api.test/").status_code == 500
    with pytest.raises(hazina.CircuitOpenError):
        client.send(transport, "GET", "http://api.test/")
    assert len(script.requests) == 2
    stats = client.registry.stats()["circuit_breaker"]["api"]
    assert (stats.failures, stats.rejections) == (2, 1)


def test_the_breaker_keeps_one_state_per_host(client: Client) -> None:
    """A failing host is cut off; requests to another host still go through."""

    def server(request: httpx.Request) -> httpx.Response:
        return busy(500) if request.url.host == "down.test" else httpx.Response(200)

    transport = client.mock(server, retry=None, circuit_breaker={"failure_threshold": 2})
    for _ in range(2):
        assert client.send(transport, "GET", "http://down.test/").status_code == 500
    with pytest.raises(hazina.CircuitOpenError) as refused:
        client.send(transport, "GET", "http://down.test/")
    assert refused.value.key == "down.test"
    assert client.send(transport, "GET", "http://up.test/").status_code == 200
    breaker = client.registry.circuit_breaker("api")
    assert breaker.state_of("down.test") == hazina.CircuitState.OPEN
    assert breaker.state_of("up.test") == hazina.CircuitState.CLOSED


def test_an_open_breaker_is_not_retried(client: Client, clock: FakeClock) -> None:
    """A refusal fails fast: waiting out the open period is not the retry's job."""
    script = Script(httpx.ConnectError("refused"))
    transport = client.mock(script, circuit_breaker={"failure_threshold": 2}, per_host=False)
    with pytest.raises(hazina.CircuitOpenError):
        client.send(transport, "GET", "http://api.test/")
    assert len(script.requests) == 2


def test_statuses_outside_failure_statuses_are_successes(client: Client) -> None:
    """A 404 is the server working as it should."""
    script = Script(httpx.Response(404))
    transport = client.mock(script, circuit_breaker={"failure_threshold": 1}, per_host=False)
    for _ in range(3):
        assert client.send(transport, "GET", "http://api.test/").status_code == 404
    assert client.registry.stats()["circuit_breaker"]["api"].successes == 3


def test_the_rate_limit_takes_one_token_per_request_before_any_attempt(client: Client) -> None:
    """Retries cost no extra tokens; a refused request never reaches the server."""
    script = Script(busy(503), busy(503), OK)
    transport = client.mock(script, rate_limit={"rate": 1, "per": 60})
    assert client.send(transport, "GET", "http://api.test/").status_code == 200
    assert len(script.requests) == 3
    with pytest.raises(hazina.RateLimitExceeded) as refused:
        client.send(transport, "GET", "http://api.test/")
    assert refused.value.retry_after > 0
    assert len(script.requests) == 3
    assert client.registry.stats()["rate_limiter"]["api"].allowed == 1


def test_the_transport_registers_its_policies_under_its_name(client: Client) -> None:
    """Defaults: a retry and a breaker with each kind's defaults, no limiter."""
    client.mock(Script(OK))
    stats = client.registry.stats()
    assert "api" in stats["retry"]
    assert "api" in stats["circuit_breaker"]
    assert "api" not in stats.get("rate_limiter", {})
    assert client.registry.get("retry", "api").config.attempts == 3


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"retry": {"on": ValueError}}, "on"),
        ({"retry": {"retry_after": lambda outcome: 1.0}}, "retry_after"),
        ({"retry_statuses": (503, 999)}, "retry_statuses"),
        ({"failure_statuses": ("500",)}, "failure_statuses"),
        ({"retry_methods": "GET"}, "retry_methods"),
        ({"retry": {"attempts": 0}}, "attempts"),
    ],
)
def test_bad_options_fail_at_construction(
    client: Client, options: dict[str, Any], named: str
) -> None:
    """A ConfigurationError names the transport (or its policy) and the bad option."""
    with pytest.raises(hazina.ConfigurationError, match=named) as raised:
        client.mock(Script(OK), **options)
    assert "api" in str(raised.value)


# -- against a real server -------------------------------------------------------------


class Flaky:
    """An ASGI app: ``/?fail=N&id=X`` answers 503 to its first N requests for X, then
    streams a body of 64 chunks of 1 KiB."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        query = dict(part.split("=") for part in scope["query_string"].decode().split("&"))
        count = self.seen[query["id"]] = self.seen.get(query["id"], 0) + 1
        if count <= int(query["fail"]):
            body = b"busy " * 1000
            headers = [(b"retry-after", b"1"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(63):
            await send({"type": "http.response.body", "body": b"x" * 1024, "more_body": True})
        await send({"type": "http.response.body", "body": b"x" * 1024})


def _idle(transport: Any) -> list[bool]:
    """Whether each connection in the inner transport's pool is idle (none checked out)."""
    return [connection.is_idle() for connection in transport.transport._pool.connections]


def test_against_a_real_server_retried_responses_are_closed_and_the_last_streams(
    client: Client, asgi_server: tuple[str, Any]
) -> None:
    """Retried responses go back to the pool; the final one streams, and once closed
    no connection is left checked out."""
    base, target = asgi_server
    target.app = Flaky()
    transport = client.transport(None)
    urls = [f"{base}/?fail={fail}&id={client}-{fail}" for fail in (0, 2, 5)]

    def run_sync() -> list[tuple[int, int]]:
        results = []
        with httpx.Client(transport=transport) as http:
            for url in urls:
                with http.stream("GET", url) as response:
                    size = sum(len(chunk) for chunk in response.iter_bytes())
                    results.append((response.status_code, size))
                assert all(_idle(transport))
        return results

    async def run_async() -> list[tuple[int, int]]:
        results = []
        async with httpx.AsyncClient(transport=transport) as http:
            for url in urls:
                async with http.stream("GET", url) as response:
                    size = sum([len(chunk) async for chunk in response.aiter_bytes()])
                    results.append((response.status_code, size))
                assert all(_idle(transport))
        return results

    results = asyncio.run(run_async()) if client.is_async else run_sync()
    # 0 failures: streamed; 2: retried twice then streamed; 5: attempts ran out on a 503.
    assert results == [(200, 64 * 1024), (200, 64 * 1024), (503, 5000)]
    assert client.registry.stats()["retry"]["api"].retries == 4


class Slow:
    """An ASGI app answering after ``delay`` seconds (``/?delay=...``), 200 with a body."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        delay = float(scope["query_string"].decode().removeprefix("delay="))
        await asyncio.sleep(delay)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"late"})


def test_timeout_limits_each_attempt_and_leaves_no_connection_behind(
    client: Client, asgi_server: tuple[str, Any]
) -> None:
    """Each attempt times out on its own (a breaker failure, retried for a GET); a
    response that arrives after its attempt was abandoned is closed, not leaked."""
    base, target = asgi_server
    target.app = Slow()
    transport = client.transport(None, timeout=0.05, retry={"attempts": 2, "initial": 0})

    def pool_idle() -> bool:
        return all(_idle(transport))

    async def run_async() -> None:
        async with httpx.AsyncClient(transport=transport) as http:
            with pytest.raises(hazina.TimeoutExceeded) as raised:
                await http.get(f"{base}/?delay=0.3")
            assert "gave up after 2 attempts" in "".join(raised.value.__notes__)
            assert pool_idle()
            assert (await http.get(f"{base}/?delay=0")).text == "late"

    def run_sync() -> None:
        with httpx.Client(transport=transport) as http:
            with pytest.raises(hazina.TimeoutExceeded) as raised:
                http.get(f"{base}/?delay=0.3")
            assert "gave up after 2 attempts" in "".join(raised.value.__notes__)
            # The abandoned workers still wait for their answers; once they have them,
            # their connections are back in the pool.
            deadline = time.monotonic() + 5
            while not pool_idle() and time.monotonic() < deadline:
                time.sleep(0.02)
            assert pool_idle()
            assert http.get(f"{base}/?delay=0").text == "late"

    if client.is_async:
        asyncio.run(run_async())
    else:
        run_sync()
    stats = client.registry.stats()
    assert stats["timeout"]["api"].timeouts == 2
    assert stats["circuit_breaker"]["api"].failures == 2


def test_transports_with_one_name_share_their_policies(client: Client) -> None:
    """A second transport of that name and configuration uses the same retry and breaker;
    one configured differently is refused, as any policy asked for with another config."""
    first = client.mock(Script(OK), retry={"attempts": 2})
    second = client.mock(Script(OK), retry={"attempts": 2})
    assert first._protection.retry is second._protection.retry
    assert first._protection.breaker is second._protection.breaker
    with pytest.raises(hazina.ConfigurationError, match="api"):
        client.mock(Script(OK), retry={"attempts": 5})


def test_a_body_that_cannot_be_sent_again_is_not_retried_after_sending(
    client: Client, asgi_server: tuple[str, Any]
) -> None:
    """A streamed upload is consumed by sending it: a retry status is returned as is,
    where the same request with a bytes body is retried."""
    base, target = asgi_server
    target.app = Flaky()
    transport = client.transport(None)

    def chunks() -> Iterator[bytes]:
        yield b"part"

    async def achunks() -> Any:
        yield b"part"

    async def run_async() -> list[int]:
        async with httpx.AsyncClient(transport=transport) as http:
            streamed = await http.put(f"{base}/?fail=1&id=a-stream", content=achunks())
            plain = await http.put(f"{base}/?fail=1&id=a-bytes", content=b"part")
            return [streamed.status_code, plain.status_code]

    def run_sync() -> list[int]:
        with httpx.Client(transport=transport) as http:
            streamed = http.put(f"{base}/?fail=1&id=s-stream", content=chunks())
            plain = http.put(f"{base}/?fail=1&id=s-bytes", content=b"part")
            return [streamed.status_code, plain.status_code]

    statuses = asyncio.run(run_async()) if client.is_async else run_sync()
    assert statuses == [503, 200]
