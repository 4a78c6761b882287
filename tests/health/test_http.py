"""The health endpoints: /health and /health/<tag> over ASGI and WSGI.

The behaviour is checked through real servers on loopback (uvicorn for the ASGI app,
wsgiref for the WSGI one) with a real HTTP client (urllib, proxies bypassed); the
protocol details no client shows (lifespan, websockets, mount prefixes) by calling the
apps directly.
"""

from __future__ import annotations

import asyncio
import datetime
import io
import json
import threading
import urllib.error
import urllib.request
import wsgiref.simple_server
import wsgiref.util
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest
from servers import LIMIT, Swappable, serving_asgi, serving_wsgi

import hazina
from hazina import HealthResult, HealthStatus
from hazina.health import asgi_app, wsgi_app

#: An ASGI or WSGI app, whichever the server in use speaks.
App = Any


@attrs.frozen
class Answer:
    """What an HTTP request got back."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@pytest.fixture(scope="module")
def asgi_server() -> Iterator[tuple[str, Swappable]]:
    """uvicorn serving the test's app, its lifespan handled by a /health app's."""
    with serving_asgi(lifespan=asgi_app(hazina.Registry())) as served:
        yield served


@pytest.fixture(scope="module")
def wsgi_server() -> Iterator[tuple[str, Swappable]]:
    """wsgiref serving the test's app, for the module."""
    with serving_wsgi() as served:
        yield served


Serve = Callable[..., str]


@pytest.fixture(params=["asgi", "wsgi"])
def serve(request: pytest.FixtureRequest, registry: hazina.Registry) -> Serve:
    """Serve the registry's health over a real server: ``serve(**app_options)`` -> base URL."""
    make = asgi_app if request.param == "asgi" else wsgi_app
    base, target = request.getfixturevalue(f"{request.param}_server")

    def start(**options: Any) -> str:
        target.app = make(registry, **options)
        return str(base)

    return start


def fetch(url: str, method: str = "GET") -> Answer:
    """A real HTTP request, whatever the status; proxies from the environment bypassed."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, method=method)
    try:
        with opener.open(request, timeout=LIMIT) as response:
            return Answer(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as error:
        with error:
            return Answer(error.code, dict(error.headers), error.read())


def lower(headers: dict[str, str]) -> dict[str, str]:
    """Header names in lower case (servers differ in how they spell them)."""
    return {name.lower(): value for name, value in headers.items()}


# -- over real servers -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "status", "code"),
    [(True, "healthy", 200), (HealthStatus.DEGRADED, "degraded", 200), (False, "unhealthy", 503)],
)
def test_the_status_code_follows_the_report(
    registry: hazina.Registry, serve: Serve, outcome: object, status: str, code: int
) -> None:
    """Healthy and degraded answer 200, unhealthy 503, as uncacheable JSON."""
    registry.health_check("db", lambda: outcome)
    base = serve()

    answer = fetch(base + "/health")

    assert answer.status == code
    headers = lower(answer.headers)
    assert headers["content-type"] == "application/json"
    assert headers["cache-control"] == "no-store"
    assert int(headers["content-length"]) == len(answer.body)
    document = answer.json()
    assert document["status"] == status
    assert document["checks"]["db"]["status"] == status
    assert set(document["checks"]["db"]) == {"status", "description", "duration", "tags"}


def test_tag_paths_serve_liveness_and_readiness_groups(
    registry: hazina.Registry, serve: Serve
) -> None:
    """/health/live and /health/ready run only their groups; /health runs everything."""
    registry.health_check("process", lambda: True, tags="live")
    registry.health_check("db", lambda: False, tags="ready")
    registry.health_check("cache", lambda: True, tags=["ready", "live"])
    base = serve()

    live, ready, everything = (
        fetch(base + path) for path in ("/health/live", "/health/ready", "/health")
    )

    assert (live.status, list(live.json()["checks"])) == (200, ["process", "cache"])
    assert (ready.status, list(ready.json()["checks"])) == (503, ["db", "cache"])
    assert (everything.status, len(everything.json()["checks"])) == (503, 3)
    assert list(fetch(base + "/health/").json()["checks"]) == ["process", "db", "cache"]


def test_an_unknown_tag_or_path_is_not_found(registry: hazina.Registry, serve: Serve) -> None:
    """A tag no check carries, and any other path, answer 404 with a JSON error."""
    registry.health_check("db", lambda: True, tags="ready")
    base = serve()

    for path in ("/health/nothing-tagged-so", "/", "/healthz", "/health/ready/extra"):
        answer = fetch(base + path)
        assert answer.status == 404, path
        assert lower(answer.headers)["content-type"] == "application/json"
        assert "error" in answer.json()
    assert registry.stats()["health_check"]["db"].runs == 0


def test_details_are_hidden_by_default(registry: hazina.Registry, serve: Serve) -> None:
    """By default the body has no error or data, and no exception message."""

    def db() -> None:
        raise ConnectionError("auth failed for user admin on 10.1.2.3")

    registry.health_check("db", db)
    registry.health_check("disk", lambda: HealthResult("degraded", "95% full", {"free": 1}))
    base = serve()

    answer = fetch(base + "/health")

    assert answer.status == 503
    assert b"10.1.2.3" not in answer.body
    checks = answer.json()["checks"]
    assert checks["db"]["description"] == "the check raised an exception (details hidden)"
    assert checks["disk"]["description"] == "95% full"
    assert "error" not in checks["db"]
    assert "data" not in checks["disk"]


def test_details_are_shown_when_asked_for(registry: hazina.Registry, serve: Serve) -> None:
    """With show_details=True the body has each check's error and data, and the message."""

    def db() -> None:
        raise ConnectionError("auth failed")

    registry.health_check("db", db)
    registry.health_check("disk", lambda: HealthResult("degraded", "95% full", {"free": 1}))
    base = serve(show_details=True)

    checks = fetch(base + "/health").json()["checks"]

    assert checks["db"]["description"] == "auth failed"
    assert checks["db"]["error"] == "ConnectionError: auth failed"
    assert checks["disk"]["data"] == {"free": 1}
    assert checks["disk"]["error"] is None


def test_data_json_cannot_encode_does_not_break_the_page(
    registry: hazina.Registry, serve: Serve
) -> None:
    """A check's data holding a datetime still gives a JSON page, the value as text."""
    when = datetime.datetime(2024, 5, 1, 12, 30, tzinfo=datetime.UTC)
    registry.health_check("backup", lambda: HealthResult("healthy", data={"last": when}))
    base = serve(show_details=True)

    answer = fetch(base + "/health")

    assert answer.status == 200
    assert answer.json()["checks"]["backup"]["data"] == {"last": str(when)}


def test_head_answers_like_get_without_a_body(registry: hazina.Registry, serve: Serve) -> None:
    """HEAD gets GET's status and headers, and no body."""
    registry.health_check("db", lambda: False)
    base = serve()

    answer = fetch(base + "/health", method="HEAD")

    assert answer.status == 503
    assert answer.body == b""
    assert lower(answer.headers)["cache-control"] == "no-store"


def test_other_methods_are_not_allowed(registry: hazina.Registry, serve: Serve) -> None:
    """POST to /health answers 405 naming the allowed methods, and runs no check."""
    registry.health_check("db", lambda: True)
    base = serve()

    answer = fetch(base + "/health", method="POST")

    assert answer.status == 405
    assert lower(answer.headers)["allow"] == "GET, HEAD"
    assert registry.stats()["health_check"]["db"].runs == 0


def test_a_slow_check_is_reported_over_http_without_waiting_for_it(
    registry: hazina.Registry, serve: Serve
) -> None:
    """A check past its timeout makes the page 503 as soon as the timeout is up."""
    release = threading.Event()

    def slow() -> bool:
        return release.wait(LIMIT)

    registry.health_check("slow", slow, timeout=0.1)
    base = serve(show_details=True)
    try:
        answer = fetch(base + "/health")
    finally:
        release.set()

    assert answer.status == 503
    assert answer.json()["checks"]["slow"]["description"] == "timed out after 0.1s"


# -- the apps called directly ----------------------------------------------------------


def call_asgi(app: Any, scope: dict[str, Any], incoming: list[dict[str, Any]]) -> list[Any]:
    """Run ``app`` for one ``scope`` with ``incoming`` messages; what it sent."""
    sent: list[Any] = []
    queue = list(incoming)

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    async def send(message: Any) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def http_scope(path: str, method: str = "GET", root_path: str = "") -> dict[str, Any]:
    """The scope of a plain HTTP request."""
    return {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": root_path,
        "query_string": b"",
        "headers": [],
    }


def test_asgi_app_answers_the_lifespan_protocol(registry: hazina.Registry) -> None:
    """Startup and shutdown are acknowledged, so servers with lifespan="on" accept the app."""
    sent = call_asgi(
        asgi_app(registry),
        {"type": "lifespan"},
        [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}],
    )

    assert sent == [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]


def test_asgi_app_refuses_websockets(registry: hazina.Registry) -> None:
    """A websocket connection is closed before it is accepted."""
    sent = call_asgi(asgi_app(registry), {"type": "websocket", "path": "/health"}, [])

    assert [message["type"] for message in sent] == ["websocket.close"]


def test_asgi_app_direct_call(registry: hazina.Registry) -> None:
    """Called directly, the ASGI app sends the status, headers and JSON body."""
    registry.health_check("db", lambda: HealthStatus.DEGRADED, tags="ready")

    start, body = call_asgi(asgi_app(registry), http_scope("/health/ready"), [])

    assert start["type"] == "http.response.start"
    assert start["status"] == 200
    headers = dict(start["headers"])
    assert headers[b"content-type"] == b"application/json"
    assert headers[b"cache-control"] == b"no-store"
    assert json.loads(body["body"])["checks"]["db"]["status"] == "degraded"


def test_asgi_app_works_under_a_mount_prefix(registry: hazina.Registry) -> None:
    """Mounted with a root_path (e.g. /ops), /ops/health serves the report."""
    registry.health_check("db", lambda: True)

    start, _ = call_asgi(asgi_app(registry), http_scope("/ops/health", root_path="/ops"), [])

    assert start["status"] == 200


def call_wsgi(app: Any, path: str, method: str = "GET", script_name: str = "") -> Answer:
    """Run the WSGI ``app`` for one request, as a server would."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SCRIPT_NAME": script_name,
        "wsgi.input": io.BytesIO(),
    }
    wsgiref.util.setup_testing_defaults(environ)
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started.append((status, headers))
        return lambda data: None

    body = b"".join(app(environ, start_response))
    status, headers = started[0]
    return Answer(int(status.split()[0]), dict(headers), body)


def test_wsgi_app_direct_call(registry: hazina.Registry) -> None:
    """Called directly, the WSGI app gives a full status line, headers and JSON body."""
    registry.health_check("db", lambda: False)

    answer = call_wsgi(wsgi_app(registry, show_details=True), "/health")

    assert answer.status == 503
    assert answer.headers["cache-control"] == "no-store"
    assert answer.json()["checks"]["db"]["status"] == "unhealthy"


def test_wsgi_app_works_under_a_mount_prefix(registry: hazina.Registry) -> None:
    """Mounted at /ops (SCRIPT_NAME), the app serves PATH_INFO /health."""
    registry.health_check("db", lambda: True)

    assert call_wsgi(wsgi_app(registry), "/health", script_name="/ops").status == 200


def test_tags_outside_ascii_are_reachable(registry: hazina.Registry) -> None:
    """A UTF-8 tag in the path is found by both apps (WSGI passes it latin-1 decoded)."""
    registry.health_check("db", lambda: True, tags="bereit-é")

    wsgi_path = "/health/bereit-é".encode().decode("latin-1")
    assert call_wsgi(wsgi_app(registry), wsgi_path).status == 200
    start, _ = call_asgi(asgi_app(registry), http_scope("/health/bereit-é"), [])
    assert start["status"] == 200


def get_from_wsgi(registry: hazina.Registry, path: str, *, show_details: bool) -> tuple[int, bytes]:
    """The status code and body the WSGI app, called directly, answers for a GET of ``path``."""
    answer = call_wsgi(wsgi_app(registry, show_details=show_details), path)
    return answer.status, answer.body


def get_from_asgi(registry: hazina.Registry, path: str, *, show_details: bool) -> tuple[int, bytes]:
    """The status code and body the ASGI app, called directly, answers for a GET of ``path``."""
    start, body = call_asgi(asgi_app(registry, show_details=show_details), http_scope(path), [])
    return start["status"], body["body"]


GETS = [get_from_wsgi, get_from_asgi]


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")


@pytest.mark.parametrize("get", GETS, ids=["wsgi", "asgi"])
def test_a_value_returned_instead_of_a_verdict_no_longer_leaks_without_details(get: Any) -> None:
    """Regression (health review): a check returning something that is no verdict showed that
    value's repr on a page without details."""
    registry = hazina.Registry()
    registry.health_check("db", lambda: {"dsn": "postgres://app:hunter2@db/prod"})

    status, body = get(registry, "/health", show_details=False)

    assert status == 503
    assert b"hunter2" not in body


@pytest.mark.parametrize("get", GETS, ids=["wsgi", "asgi"])
def test_data_with_a_tuple_key_no_longer_makes_the_page_a_500(get: Any) -> None:
    """Regression (health review): a check whose data has a tuple key made the page a 500; now
    it is JSON."""
    registry = hazina.Registry()
    data: dict[Any, int] = {("eu", "west"): 3}
    registry.health_check("pairs", lambda: HealthResult("healthy", data=data))

    status, body = get(registry, "/health", show_details=True)

    assert status == 200
    assert json.loads(body)["checks"]["pairs"]["status"] == "healthy"


@pytest.mark.parametrize("get", GETS, ids=["wsgi", "asgi"])
def test_data_with_a_nan_no_longer_gives_a_body_strict_json_rejects(get: Any) -> None:
    """Regression (health review): NaN in a check's data gave a body strict JSON parsers
    reject; no longer."""
    registry = hazina.Registry()
    registry.health_check("ratio", lambda: HealthResult("healthy", data={"hit": float("nan")}))

    status, body = get(registry, "/health", show_details=True)

    assert status == 200
    assert json.loads(body, parse_constant=_refuse_constant)["status"] == "healthy"


def test_the_default_registry_is_served(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a registry argument, both apps serve hazina.registry's checks."""
    from hazina._core import registry as _registry

    fresh = hazina.Registry()
    fresh.health_check("default-db", lambda: False)
    monkeypatch.setattr(_registry, "registry", fresh)

    wsgi_answer = call_wsgi(wsgi_app(), "/health")
    start, body = call_asgi(asgi_app(), http_scope("/health"), [])

    assert (wsgi_answer.status, start["status"]) == (503, 503)
    assert list(wsgi_answer.json()["checks"]) == ["default-db"]
    assert list(json.loads(body["body"])["checks"]) == ["default-db"]


@pytest.mark.parametrize("get", GETS, ids=["wsgi", "asgi"])
def test_data_holding_itself_is_served_not_a_500(get: Any) -> None:
    """Regression (issue 10): circular data in a check's result made the detailed page a 500;
    the cycle is now cut and marked."""
    registry = hazina.Registry()
    data: dict[str, Any] = {"name": "db"}
    data["self"] = data
    listed: list[Any] = [1]
    listed.append(listed)
    data["list"] = listed
    registry.health_check("loop", lambda: HealthResult("healthy", data=data))

    status, body = get(registry, "/health", show_details=True)

    assert status == 200
    served = json.loads(body)["checks"]["loop"]["data"]
    assert served["name"] == "db"
    assert "<circular reference>" in json.dumps(served)
    assert served["list"] == [1, "<circular reference>"]


def test_wsgi_path_already_decoded_beyond_latin_1_is_routed(registry: hazina.Registry) -> None:
    """Regression (issue 10): a PATH_INFO holding code points above U+00FF (a server that
    decoded the URL itself) crashed the WSGI app; it is now taken as the text it is."""
    registry.health_check("db", lambda: True, tags="bereit-€")

    assert call_wsgi(wsgi_app(registry), "/health/bereit-€").status == 200
    assert call_wsgi(wsgi_app(registry), "/health/ändern-€").status == 404
