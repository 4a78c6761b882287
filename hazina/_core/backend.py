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


#: ``backend=`` of a factory or decorator: a backend, or ``"memory"`` to opt out of the
#: registry's default backend.
BackendChoice: TypeAlias = Backend | Literal["memory"]
