"""One event loop's round trips to Redis, pipelined while one is in flight.

Tasks on one loop often decide at once (32 requests, each through a rate limiter). The
first sends its command straight away; those that ask while it is in flight wait, and go
together in one pipeline as soon as it returns: one round trip for many decisions, and
no waiting at all for a task that asks alone. Each command's answer or error goes to its
own caller, so outages, ``NOSCRIPT`` and timeouts are handled per call as without it.

Every call is bounded by ``timeout``: a queued call by a timer of its own (one
``call_at``, cheaper than an ``asyncio.timeout`` block), a sent one by the socket timeout
of a client the backend made, or by ``asyncio.timeout`` for a client it was given.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio

from .wire import Command


def _expire(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_exception(TimeoutError("no answer from Redis in time"))


class LoopPipeline:
    """Sends the commands of one event loop's tasks, batching those that queue up.

    Args:
        client: The loop's asyncio client.
        timeout: Seconds any one call may wait.
        client_times_out: Whether ``client`` gives up on a silent server by itself
            after ``timeout`` (its socket timeout), so a sent call needs no timer.
    """

    def __init__(
        self, client: redis.asyncio.Redis, timeout: float, *, client_times_out: bool
    ) -> None:
        self.client = client
        self._timeout = timeout
        self._client_times_out = client_times_out
        self._busy = False
        self._waiting: list[tuple[Command, asyncio.Future[Any]]] = []
        # Held so the drain task is not garbage-collected while it runs.
        self._drain_task: asyncio.Task[None] | None = None

    async def execute(self, *command: Any) -> Any:
        """Send ``command`` (now, or with the next batch) and return Redis's answer.

        Raises:
            TimeoutError: No answer within ``timeout``.
        """
        loop = asyncio.get_running_loop()
        if self._busy:
            future: asyncio.Future[Any] = loop.create_future()
            self._waiting.append((command, future))
            timer = loop.call_at(loop.time() + self._timeout, _expire, future)
            try:
                return await future
            finally:
                timer.cancel()
        self._busy = True
        send: Callable[..., Awaitable[Any]] = self.client.execute_command
        try:
            if self._client_times_out:
                return await send(*command)
            async with asyncio.timeout(self._timeout):
                return await send(*command)
        finally:
            if self._waiting:
                self._drain_task = loop.create_task(self._drain())
            else:
                self._busy = False

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                pipe = self.client.pipeline(transaction=False)
                for command, _ in batch:
                    pipe.execute_command(*command)
                try:
                    if self._client_times_out:
                        answers = await pipe.execute(raise_on_error=False)
                    else:
                        async with asyncio.timeout(self._timeout):
                            answers = await pipe.execute(raise_on_error=False)
                except Exception as error:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for (_, future), answer in zip(batch, answers, strict=True):
                    if future.done():
                        continue  # its caller gave up (timed out or cancelled)
                    if isinstance(answer, BaseException):
                        future.set_exception(answer)
                    else:
                        future.set_result(answer)
        finally:
            self._busy = False
            self._drain_task = None
