"""What a policy needs from whoever holds it: a clock, and somewhere to send its events.

Policies depend on this small record rather than on :class:`~hazina.Registry`, so the
registry can import every policy kind while no policy imports the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from .clock import Clock


@attrs.frozen
class Host:
    """The clock a policy reads and sleeps on, and the function that publishes its events.

    ``get_or_create(kind, name)`` hands a policy another policy of the same registry
    that it works with (a retry's budget), made with defaults if it does not exist.
    """

    clock: Clock
    emit: Callable[[object], None]
    get_or_create: Callable[[str, str], Any] | None = None
