"""After ``fork()``, the child's copies of locks held by other threads are freed.

``fork()`` copies only the thread that calls it. A lock another thread held at that
moment stays held in the child for ever, and so does any load or check that thread had
in flight: the child would wait on it and hang. Whatever holds such state registers
here and is reset in the child, before the child's own code runs again.

The state a lock guards is consistent in the child: a thread only lets another one
(such as the one forking) run at the same points where a signal's exception could land,
and every policy keeps its state consistent at those points.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from typing import Protocol


class ForkAware(Protocol):
    """Something with locks or in-flight work to reset in a forked child."""

    def _after_fork_in_child(self) -> None:
        """Free its locks and forget work that ran in threads the child does not have."""


_aware: weakref.WeakSet[ForkAware] = weakref.WeakSet()
_hooks: list[Callable[[], None]] = []


def reset_after_fork(owner: ForkAware) -> None:
    """Call ``owner._after_fork_in_child()`` in every child forked while it is alive."""
    _aware.add(owner)


def on_fork_in_child(hook: Callable[[], None]) -> None:
    """Call ``hook()`` in every child forked from now on (for module-level state)."""
    _hooks.append(hook)


def fresh_lock(lock: threading.Lock | threading.RLock) -> None:
    """Free ``lock`` in place, in a forked child (whoever held it in the parent)."""
    # The same reinitialisation the standard library applies to its own locks
    # (logging, threading); in place, so references held elsewhere stay valid.
    lock._at_fork_reinit()  # type: ignore[union-attr]


def _in_child() -> None:
    for hook in _hooks:
        hook()
    for owner in list(_aware):
        owner._after_fork_in_child()


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork()
    os.register_at_fork(after_in_child=_in_child)
