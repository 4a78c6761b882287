"""What the registry needs from a shared-state backend: the policy class it supplies per kind.

A backend (``hazina.redis.RedisBackend``) brings its own policy classes; the registry
asks it once, when a policy is created, so the in-memory classes and their hot paths
never see a backend at all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Protocol, TypeAlias

from .host import Host

#: Makes a policy: ``(name, config, host)`` to the policy object.
PolicyMaker: TypeAlias = Callable[[str, Any, Host], Any]


class Backend(Protocol):
    """Shared state for the policies of many processes."""

    def policy_maker(self, kind: str) -> PolicyMaker | None:
        """How to make a policy of ``kind`` on this backend; ``None`` if it has no shared state."""
        ...


class SharedReading(Protocol):
    """A policy whose stats read shared state: the registry sends the reads of all such
    policies of one backend together, in one round trip (a scrape of many policies)."""

    def reading_command(self) -> tuple[BatchReader, tuple[Any, ...]] | None:
        """The backend to ask and the command to send; ``None`` when no round trip is to
        be made (the backend is down): :meth:`stats` then answers from what it knows."""
        ...

    def stats_from(self, answer: Any) -> Any:
        """The stats, given the command's answer (``None`` or an exception: no answer)."""
        ...

    def stats(self) -> Any: ...


class BatchReader(Protocol):
    """A backend that sends many reads in one round trip."""

    def read_many(self, commands: list[tuple[Any, ...]]) -> list[Any] | None:
        """Each command's answer (an error answer as an exception), or ``None`` if the
        backend did not answer."""
        ...


#: ``backend=`` of a factory or decorator: a backend, or ``"memory"`` to opt out of the
#: registry's default backend.
BackendChoice: TypeAlias = Backend | Literal["memory"]
