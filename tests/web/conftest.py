"""Real servers on loopback for the HTTP tests: uvicorn for ASGI apps, wsgiref for WSGI."""

from __future__ import annotations

import socket
import threading
import time
import wsgiref.simple_server
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

#: Real seconds a server may take to start or stop.
LIMIT = 10.0


class QuietHandler(wsgiref.simple_server.WSGIRequestHandler):
    """wsgiref's handler without the access log on stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Swappable:
    """The app a long-running test server hands each request to; tests replace it."""

    def __init__(self) -> None:
        self.app: Any = None


@pytest.fixture(scope="module")
def asgi_server() -> Iterator[tuple[str, Swappable]]:
    """uvicorn on 127.0.0.1 and an ephemeral port, in a thread, stopped at the end."""
    target = Swappable()

    async def delegate(scope: Any, receive: Any, send: Any) -> None:
        await target.app(scope, receive, send)

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(delegate, log_level="critical", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + LIMIT
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", target
    finally:
        server.should_exit = True
        thread.join(LIMIT)
        sock.close()
    assert not thread.is_alive(), "uvicorn did not stop"


@pytest.fixture(scope="module")
def wsgi_server() -> Iterator[tuple[str, Swappable]]:
    """wsgiref's server on 127.0.0.1 and an ephemeral port, in a thread, stopped at the end."""
    target = Swappable()

    def delegate(environ: Any, start_response: Any) -> Any:
        return target.app(environ, start_response)

    server = wsgiref.simple_server.make_server("127.0.0.1", 0, delegate, handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", target
    finally:
        server.shutdown()
        thread.join(LIMIT)
        server.server_close()


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
