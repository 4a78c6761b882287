"""Whether the ``hazina`` logger wants debug records, known without asking it per call.

``Logger.isEnabledFor`` is a method call and a dict lookup, as dear as a whole cache
hit. So the answer is kept in a flag that hits read (one attribute load) and that is
refreshed where asking is cheap by comparison: on every miss, on ``stats()``, and
when a function is decorated. Switching debug logging on is therefore seen from the
next miss on.
"""

from __future__ import annotations

import logging

logger = logging.getLogger("hazina")
#: Where background refreshes report their failures (at DEBUG: no caller saw them fail).
cache_logger = logging.getLogger("hazina.cache")


class DebugSwitch:
    """The cached answer to ``logger.isEnabledFor(logging.DEBUG)``."""

    __slots__ = ("on",)

    def __init__(self) -> None:
        self.on = False
        self.refresh()

    def refresh(self) -> bool:
        """Ask the logger again; returns the answer."""
        self.on = logger.isEnabledFor(logging.DEBUG)
        return self.on


DEBUG = DebugSwitch()
