"""Where an injected delay asks how long it may last."""

from __future__ import annotations


def time_left() -> float | None:
    """Seconds left before the enclosing hazina deadline, or ``None`` outside any."""
    return None
