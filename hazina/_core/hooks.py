"""Per-call moments an exporter may mark on the caller's span without making them events.

Registry events are for rare things: every listener and the kind's logger see each
one. A cache load happens on every miss, so it is no event; an exporter that wants it
on the caller's trace installs a hook here for as long as it is active. Unset, which
is the usual case, a load pays one attribute read before it runs the user's loader.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable


class SpanHooks:
    """Process-wide hooks; each is ``None`` unless an exporter installed it."""

    __slots__ = ("cache_load",)

    def __init__(self) -> None:
        #: Called as ``cache_load(policy, key)`` by the caller about to run a cache's
        #: loader (this process's leader of that key's load). Must not raise.
        self.cache_load: Callable[[object, Hashable], None] | None = None


SPANS = SpanHooks()
