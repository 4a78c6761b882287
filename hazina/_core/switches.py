"""The process-wide switch that makes retry waits instant (see hazina.testing)."""

from __future__ import annotations


class WaitSwitch:
    """Holds whether waits are instant; read on every wait, so flipping it is immediate."""

    __slots__ = ("instant",)

    def __init__(self) -> None:
        self.instant = False


WAITS = WaitSwitch()
