"""Adversarial review of the health endpoints: what leaks without details, and what breaks JSON."""

from __future__ import annotations

import asyncio
import io
import json
import wsgiref.util
from typing import Any

import pytest

import hazina
from hazina import HealthResult
from hazina.health import asgi_app, wsgi_app


def call_wsgi(registry: hazina.Registry, path: str, *, show_details: bool) -> tuple[int, bytes]:
    """The status code and body the WSGI app answers for a GET of ``path``."""
    environ: dict[str, Any] = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "SCRIPT_NAME": ""}
    environ["wsgi.input"] = io.BytesIO()
    wsgiref.util.setup_testing_defaults(environ)
    started: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started.append(status)
        return lambda data: None

    body = b"".join(wsgi_app(registry, show_details=show_details)(environ, start_response))
    return int(started[0].split()[0]), body


def call_asgi(registry: hazina.Registry, path: str, *, show_details: bool) -> tuple[int, bytes]:
    """The status code and body the ASGI app answers for a GET of ``path``."""
    scope = {"type": "http", "method": "GET", "path": path, "root_path": "", "headers": []}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    async def run() -> None:
        await asgi_app(registry, show_details=show_details)(scope, receive, send)

    asyncio.run(run())
    return sent[0]["status"], sent[1]["body"]


CALLERS = [call_wsgi, call_asgi]


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")


@pytest.mark.parametrize("call", CALLERS, ids=["wsgi", "asgi"])
def test_a_returned_value_is_not_shown_without_details(call: Any) -> None:
    """Regression: a check returning something that is no verdict showed that value's repr on a
    page without details."""
    registry = hazina.Registry()
    registry.health_check("db", lambda: {"dsn": "postgres://app:hunter2@db/prod"})

    status, body = call(registry, "/health", show_details=False)

    assert status == 503
    assert b"hunter2" not in body


@pytest.mark.parametrize("call", CALLERS, ids=["wsgi", "asgi"])
def test_data_with_keys_json_cannot_encode_still_gives_a_report(call: Any) -> None:
    """Regression: a check whose data has a tuple key made the page a 500; now it is JSON."""
    registry = hazina.Registry()
    data: dict[Any, int] = {("eu", "west"): 3}
    registry.health_check("pairs", lambda: HealthResult("healthy", data=data))

    status, body = call(registry, "/health", show_details=True)

    assert status == 200
    assert json.loads(body)["checks"]["pairs"]["status"] == "healthy"


@pytest.mark.parametrize("call", CALLERS, ids=["wsgi", "asgi"])
def test_data_with_a_nan_still_gives_strict_json(call: Any) -> None:
    """Regression: NaN in a check's data gave a body strict JSON parsers reject; no longer."""
    registry = hazina.Registry()
    registry.health_check("ratio", lambda: HealthResult("healthy", data={"hit": float("nan")}))

    status, body = call(registry, "/health", show_details=True)

    assert status == 200
    assert json.loads(body, parse_constant=_refuse_constant)["status"] == "healthy"
