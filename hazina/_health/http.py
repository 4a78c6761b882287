"""The health report over HTTP: one routing-and-rendering core, thin ASGI and WSGI shells.

``/health`` runs every check, ``/health/<tag>`` the checks carrying that tag (404 if
none does). 200 for healthy and degraded (the process can still serve), 503 for
unhealthy. Never cached: a stale "healthy" is worse than none.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from http import HTTPStatus
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

import attrs

from .._core.registry import Registry, registry_or_default
from .records import UNHEALTHY, HealthReport

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PREFIX = "/health"


@attrs.frozen
class Response:
    """What to answer, in neither protocol's terms."""

    status: int
    body: bytes
    extra_headers: tuple[tuple[str, str], ...] = ()

    def headers(self) -> list[tuple[str, str]]:
        # Also for HEAD, whose empty answer announces the length a GET body would have.
        return [
            ("content-type", "application/json"),
            ("cache-control", "no-store"),
            ("content-length", str(len(self.body))),
            *self.extra_headers,
        ]


@attrs.frozen
class Route:
    """Run the checks selected by ``tag`` (all when ``None``)."""

    tag: str | None


def _json(document: object) -> bytes:
    # A check's data that JSON cannot encode must not turn a health report into a 500,
    # nor into a body that strict parsers (JSON.parse, Go) reject.
    try:
        return json.dumps(_strict(document), default=str, allow_nan=False).encode()
    except RecursionError:  # nested deeper than the interpreter recurses
        return json.dumps(_strict(_without_data(document)), default=str).encode()


def _without_data(document: object) -> object:
    """``document`` (a report) with each check's data replaced by a note saying why."""
    if not isinstance(document, dict) or not isinstance(document.get("checks"), dict):
        return {"error": "the report could not be encoded"}
    checks = {
        name: {**check, "data": "<nested too deeply to encode>"} if "data" in check else check
        for name, check in document["checks"].items()
    }
    return {**document, "checks": checks}


#: What a container found inside itself is rendered as.
CIRCULAR = "<circular reference>"


def _strict(value: object, path: frozenset[int] = frozenset()) -> object:
    """``value`` with every mapping key a string, no NaN or infinity, and no cycle left
    in it (a container found inside itself becomes :data:`CIRCULAR`)."""
    if isinstance(value, dict | list | tuple):
        if id(value) in path:
            return CIRCULAR
        inner = path | {id(value)}
        if isinstance(value, dict):
            return {_key(key): _strict(item, inner) for key, item in value.items()}
        return [_strict(item, inner) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _key(key: object) -> str | int | bool | None:
    return key if isinstance(key, str | int | bool) or key is None else str(key)


def _error(status: HTTPStatus, message: str, *headers: tuple[str, str]) -> Response:
    return Response(status.value, _json({"error": message}), headers)


def route(method: str, paths: Iterable[str]) -> Route | Response:
    """Where a request goes; ``paths`` are the request's path with and without any
    mount prefix (the first that is a health path wins)."""
    for path in paths:
        if path in (PREFIX, PREFIX + "/"):
            tag = None
        elif path.startswith(PREFIX + "/") and "/" not in path[len(PREFIX) + 1 :]:
            tag = path[len(PREFIX) + 1 :]
        else:
            continue
        if method not in ("GET", "HEAD"):
            return _error(
                HTTPStatus.METHOD_NOT_ALLOWED, f"{method} is not allowed", ("allow", "GET, HEAD")
            )
        return Route(tag)
    return _error(HTTPStatus.NOT_FOUND, "not found; try /health or /health/<tag>")


def render(report: HealthReport, tag: str | None, *, show_details: bool) -> Response:
    """The response for ``report`` on the path of ``tag``."""
    if tag is not None and not report.entries:
        return _error(HTTPStatus.NOT_FOUND, f"no health check is tagged {tag!r}")
    status = HTTPStatus.SERVICE_UNAVAILABLE if report.status is UNHEALTHY else HTTPStatus.OK
    return Response(status.value, _json(report.to_dict(show_details=show_details)))


def asgi_app(registry: Registry | None = None, *, show_details: bool = False) -> ASGIApp:
    """An ASGI application serving the health report at ``/health`` and ``/health/<tag>``.

    Args:
        registry: Whose checks to run; ``hazina.registry`` by default.
        show_details: Show each check's ``error`` and ``data`` and the message of a
            check that raised. Off by default: a health endpoint is often reachable by
            anyone, and exception messages leak internals.
    """
    where = registry_or_default(registry)

    async def health_app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            # A websocket is refused (403) by closing it before accepting it.
            await send({"type": "websocket.close", "code": 1000})
            return
        path, root = scope["path"], scope.get("root_path", "")
        paths = (path, path[len(root) :]) if root and path.startswith(root) else (path,)
        outcome = route(scope["method"], paths)
        if isinstance(outcome, Route):
            report = await where.check_health(tags=outcome.tag)
            outcome = render(report, outcome.tag, show_details=show_details)
        head = scope["method"] == "HEAD"
        await send(
            {
                "type": "http.response.start",
                "status": outcome.status,
                "headers": [
                    (name.encode("latin-1"), value.encode("latin-1"))
                    for name, value in outcome.headers()
                ],
            }
        )
        await send({"type": "http.response.body", "body": b"" if head else outcome.body})

    return health_app


async def _lifespan(receive: Receive, send: Send) -> None:
    # Nothing to set up, but a server that sends lifespan events expects answers.
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _wsgi_text(value: str) -> str:
    """A WSGI path as the text the URL means."""
    try:
        # PEP 3333 hands the path over as latin-1 decoded bytes; the URL means UTF-8.
        return value.encode("latin-1").decode("utf-8", "replace")
    except UnicodeEncodeError:
        # Not bytes in disguise (some servers decode the URL themselves): text already.
        return value


def wsgi_app(registry: Registry | None = None, *, show_details: bool = False) -> WSGIApplication:
    """A WSGI application serving the health report at ``/health`` and ``/health/<tag>``.

    Arguments as for :func:`asgi_app`. Runs the checks with
    ``registry.check_health_sync()`` (sync checks in threads, async ones on a loop of
    the request's own).
    """
    where = registry_or_default(registry)

    def health_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = _wsgi_text(environ.get("PATH_INFO", ""))
        script = _wsgi_text(environ.get("SCRIPT_NAME", ""))
        method = environ.get("REQUEST_METHOD", "GET")
        outcome = route(method, (script + path, path) if script else (path,))
        if isinstance(outcome, Route):
            report = where.check_health_sync(tags=outcome.tag)
            outcome = render(report, outcome.tag, show_details=show_details)
        head = method == "HEAD"
        start_response(f"{outcome.status} {HTTPStatus(outcome.status).phrase}", outcome.headers())
        return [b"" if head else outcome.body]

    return health_app
