"""Commands as Redis reads them off the socket (RESP), and sending them on a sync client.

redis-py's ``execute_command`` wraps every command in retries, observability hooks and
response callbacks: about as much client CPU as the round trip's own system calls. A
hazina decision needs none of them (an outage is handled by the backend, the answer is
read as it comes), so a plain client's commands are packed here, the usual ones once,
and written to a connection of the client's own pool.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import redis

Command = tuple[Any, ...]
#: A command ready for :func:`send`: packed bytes, or the tuple for a client that must
#: be called through ``execute_command``.
Prepared = Command | bytes


def pool_of(client: redis.Redis | None) -> redis.ConnectionPool | None:
    """The pool to send packed commands on, or ``None`` when the client must be called.

    A subclass, an instrumented client (tracing wraps ``execute_command``), or a
    single-connection client keeps its own ``execute_command``.
    """
    execute = getattr(type(client), "execute_command", None)
    if (
        type(client) is not redis.Redis
        or not isinstance(execute, types.FunctionType)
        or execute.__module__ != "redis.client"
        or client.connection is not None
    ):
        return None
    return client.connection_pool


class Packer:
    """Packs commands with the encoding of one client's connections."""

    __slots__ = ("_encoder",)

    def __init__(self, pool: redis.ConnectionPool) -> None:
        self._encoder = pool.get_encoder()

    def pack(self, command: Command) -> bytes:
        parts = [b"*%d\r\n" % len(command)]
        encode: Callable[[Any], bytes] = self._encoder.encode
        for arg in command:
            data = arg if type(arg) is bytes else encode(arg)
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        return b"".join(parts)


def send(pool: redis.ConnectionPool, packed: bytes) -> Any:
    """Write ``packed`` on one of the pool's connections and read the answer.

    An error reply is raised as redis-py raises it (``NoScriptError``, ...); a broken or
    silent connection is dropped by redis-py before its error reaches the caller.
    """
    connection = pool.get_connection()
    try:
        write: Callable[[tuple[bytes]], None] = connection.send_packed_command
        write((packed,))
        return connection.read_response()
    finally:
        pool.release(connection)
