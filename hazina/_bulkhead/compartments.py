"""A bulkhead's state per key: the calls running, and the callers queued for a slot."""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict, deque
from collections.abc import Hashable


class Waiter:
    """One caller on the slow path: a thread that blocks on ``latch``, or a task that
    awaits ``future`` on ``loop`` (in thread ``thread``), if it has to queue.

    Made before anything changes, it records what the caller holds at every moment
    (``compartment`` once looked up, ``granted`` once a slot is its), so that an
    exception landing anywhere (a signal handler's, a cancellation) can undo exactly that.
    """

    __slots__ = ("compartment", "future", "granted", "latch", "loop", "since", "thread", "waited")

    def __init__(self, since: float) -> None:
        self.since: float = since
        self.compartment: Compartment | None = None
        self.granted: bool = False
        self.waited: float = 0.0
        self.latch: threading.Lock | None = None
        self.future: asyncio.Future[None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: int = 0


class Compartment:
    """The calls running under one key, and the callers waiting for one of its slots."""

    __slots__ = ("active", "queue")

    def __init__(self) -> None:
        self.active: int = 0
        self.queue: deque[Waiter] = deque()

    def is_idle(self) -> bool:
        return not self.active and not self.queue


class Compartments:
    """Compartments per key, least recently used first, idle ones dropped past ``max_keys``.

    Only idle compartments are dropped (they hold nothing), so a busy key never loses
    its count; while every tracked key is busy the table holds more than ``max_keys``,
    at most one per running or queued call.
    """

    __slots__ = ("entries", "max_keys")

    def __init__(self, max_keys: int) -> None:
        self.max_keys: int = max_keys
        self.entries: OrderedDict[Hashable, Compartment] = OrderedDict()

    def obtain(self, key: Hashable) -> Compartment:
        """The compartment of ``key``, made if new; call under the bulkhead's lock."""
        entries = self.entries
        compartment = entries.get(key)
        if compartment is not None:
            entries.move_to_end(key)
            return compartment
        compartment = entries[key] = Compartment()
        if len(entries) > self.max_keys:
            self._drop_idle(compartment)
        return compartment

    def _drop_idle(self, keep: Compartment) -> None:
        excess = len(self.entries) - self.max_keys
        idle = []
        for key, compartment in self.entries.items():
            if compartment is not keep and compartment.is_idle():
                idle.append(key)
                if len(idle) == excess:
                    break
        for key in idle:
            del self.entries[key]

    def clear(self) -> None:
        """Drop the idle compartments (busy ones still hold running calls)."""
        for key in [key for key, entry in self.entries.items() if entry.is_idle()]:
            del self.entries[key]
