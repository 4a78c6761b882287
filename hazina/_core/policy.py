"""What every policy shares: a name, a frozen configuration, a host to report to."""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Generic, TypeVar

from .clock import Clock
from .host import Host

ConfigT = TypeVar("ConfigT")
StatsT = TypeVar("StatsT")


class Policy(abc.ABC, Generic[ConfigT, StatsT]):
    """A named, configured piece of resilience held by a :class:`~hazina.Registry`.

    A policy decides; the drivers it hands to the decorator core perform the call,
    the wait or the await. Drivers are built once per decorated function, so the
    hot path never looks the policy up or inspects the function again.
    """

    kind: ClassVar[str]
    config_class: ClassVar[type[Any]]

    def __init__(self, name: str, config: ConfigT, host: Host) -> None:
        self.name = name
        self.config = config
        self.clock: Clock = host.clock
        self.emit: Callable[[object], None] = host.emit

    @abc.abstractmethod
    def stats(self) -> StatsT:
        """A frozen snapshot of the policy's counters."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Put the policy's state back to fresh; configuration is kept."""

    @abc.abstractmethod
    def _sync_driver(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """A plain function that calls ``fn`` under this policy."""

    @abc.abstractmethod
    def _async_driver(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        """An ``async def`` function that awaits ``fn`` under this policy."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
