"""Real servers on loopback for the HTTP tests: uvicorn for ASGI apps, wsgiref for WSGI."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from servers import LIMIT, Swappable, serving_asgi, serving_wsgi


@pytest.fixture(scope="module")
def asgi_server() -> Iterator[tuple[str, Swappable]]:
    """uvicorn serving the test's app (no lifespan), for the module."""
    with serving_asgi() as served:
        yield served


@pytest.fixture(scope="module")
def wsgi_server() -> Iterator[tuple[str, Swappable]]:
    """wsgiref serving the test's app, for the module."""
    with serving_wsgi() as served:
        yield served


def raw_request(base: str, data: bytes) -> bytes:
    """Send ``data`` as is to the server at ``base`` and return what it answers."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=LIMIT) as connection:
        connection.sendall(data)
        connection.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)
