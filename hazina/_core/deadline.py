"""The deadline an enclosing ``@timeout`` set, which every nested hazina wait honours.

A context variable holds the innermost (earliest) deadline of the running thread or
task. Waits read it only when they are about to wait (retry backoff, a rate limiter's
``wait=True``, a bulkhead queue), so calls that never wait never read it. Deadlines
are on real time (``time.monotonic``) whatever the registry's clock: a fake clock that
stands still must not keep a real call running for ever.
"""

from __future__ import annotations

import asyncio
import contextvars
import time


class Deadline:
    """A point in real time a call must finish by; ``expired`` once its timer fired."""

    __slots__ = ("at", "expired")

    def __init__(self, at: float) -> None:
        self.at: float = at
        self.expired: bool = False

    def __repr__(self) -> str:
        return f"Deadline(at={self.at!r}, expired={self.expired!r})"


#: The earliest deadline of the enclosing ``@timeout`` calls, or ``None``.
DEADLINE: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar(
    "hazina_deadline", default=None
)


def remaining() -> float | None:
    """Seconds left before the enclosing ``@timeout``'s deadline; ``None`` outside any.

    Never negative. Useful to hand the time left to a client that takes a timeout::

        @hazina.timeout("pricing", seconds=2)
        def price(item):
            return http.get(url, timeout=hazina.remaining())
    """
    deadline = DEADLINE.get()
    if deadline is None:
        return None
    left = deadline.at - time.monotonic()
    return left if left > 0.0 else 0.0


def would_pass_deadline(wait: float) -> bool:
    """Whether a wait of ``wait`` seconds starting now would end past the deadline."""
    deadline = DEADLINE.get()
    return deadline is not None and time.monotonic() + wait >= deadline.at


def cancelled_by_deadline(error: BaseException) -> bool:
    """Whether ``error`` is the cancellation an enclosing hazina deadline caused."""
    if not isinstance(error, asyncio.CancelledError):
        return False
    deadline = DEADLINE.get()
    return deadline is not None and deadline.expired
