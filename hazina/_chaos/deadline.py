"""Where an injected delay asks how long it may last."""

from __future__ import annotations

from .._core.deadline import remaining

#: Seconds left before the enclosing hazina deadline (``@timeout``), or ``None``.
time_left = remaining
