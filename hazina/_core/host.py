"""What a policy needs from whoever holds it: a clock, and somewhere to send its events.

Policies depend on this small record rather than on :class:`~hazina.Registry`, so the
registry can import every policy kind while no policy imports the registry.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from .clock import Clock


@attrs.frozen
class Host:
    """The clock a policy reads and sleeps on, and the function that publishes its events."""

    clock: Clock
    emit: Callable[[object], None]
