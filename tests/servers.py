"""Real servers on loopback for the HTTP tests: uvicorn for ASGI apps, wsgiref for WSGI.

Each serves a :class:`Swappable` target that a test replaces, so one server (started
once per module) serves every test's app.
"""

from __future__ import annotations

import socket
import threading
import time
import wsgiref.simple_server
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

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


@contextmanager
def serving_asgi(lifespan: Any = None) -> Iterator[tuple[str, Swappable]]:
    """uvicorn on 127.0.0.1 and an ephemeral port, in a thread, stopped at the end.

    ``lifespan``: an ASGI app given the lifespan scope (none is sent without one).
    """
    target = Swappable()

    async def delegate(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await lifespan(scope, receive, send)
        else:
            await target.app(scope, receive, send)

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        delegate, log_level="critical", lifespan="off" if lifespan is None else "on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        # uvicorn offers no start-up callback: poll its flag, within a limit.
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


@contextmanager
def serving_wsgi() -> Iterator[tuple[str, Swappable]]:
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
