"""Process-wide testing switches (see hazina.testing): instant waits, and policies off.

Both are read only where a policy would wait or refuse anyway, never on the path of a
call that passes (a closed breaker's call, a cache hit, an admitted call), so leaving
them off costs nothing. A kind that waits reads ``WAITS.instant`` before it sleeps; a
kind that refuses, delays or replaces calls reads ``DISABLED.on`` where it decides to.
"""

from __future__ import annotations

from collections.abc import Callable


class WaitSwitch:
    """Holds whether waits are instant; read on every wait, so flipping it is immediate."""

    __slots__ = ("instant",)

    def __init__(self) -> None:
        self.instant = False


WAITS = WaitSwitch()


class DisabledSwitch:
    """Holds whether every policy passes calls straight through.

    A kind whose pass path has no decision left to read the switch in (a cache hit)
    keeps a flag of its own for its slow lane and asks to hear of changes through
    :meth:`watch`.
    """

    __slots__ = ("_watchers", "on")

    def __init__(self) -> None:
        self.on = False
        self._watchers: list[Callable[[], object]] = []

    def set(self, on: bool) -> None:
        """Switch, then tell the watchers."""
        self.on = on
        for watcher in self._watchers:
            watcher()

    def watch(self, watcher: Callable[[], object]) -> None:
        """Call ``watcher()`` after every change."""
        self._watchers.append(watcher)


DISABLED = DisabledSwitch()
