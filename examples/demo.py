"""hazina in one screen: a flaky dependency behind @retry and @circuit_breaker.

Run it with ``python examples/demo.py``. The "inventory service" below fails now and
then, and is down outright for a while in the middle; watch retries absorb the blips,
the breaker stop the hammering during the outage, and a probe close it again.
"""

from __future__ import annotations

import random
import time

import hazina

rng = random.Random(7)  # seeded, so every run tells the same story


class InventoryService:
    """A stand-in for a remote service: flaky, and down for a spell."""

    def __init__(self) -> None:
        self.down_until = 0.0
        self.requests = 0

    def stock(self, sku: str) -> int:
        self.requests += 1
        if time.monotonic() < self.down_until:
            raise ConnectionError("inventory service unreachable")
        if rng.random() < 0.3:
            raise TimeoutError("inventory service timed out")
        return len(sku) * 7


service = InventoryService()


# Recommended order: retry outside, breaker inside, so the breaker sees every
# attempt and retry waits out the breaker's retry_after instead of hammering it.
# hazina's CircuitOpenError carries retry_after, which retry honours as its minimum wait.
@hazina.retry("inventory", attempts=3, initial=0.02, max_delay=0.5)
@hazina.circuit_breaker("inventory", failure_threshold=4, open_for=0.2, success_threshold=1)
def stock_level(sku: str) -> int:
    """How many of ``sku`` are in stock."""
    return service.stock(sku)


def show(event: object) -> None:
    """Print the events worth seeing (a registry listener)."""
    if isinstance(event, hazina.CircuitStateChanged):
        print(f"    breaker {event.name!r}: {event.old} -> {event.new}")
    elif isinstance(event, hazina.RetryScheduled):
        reason = type(event.error).__name__
        print(f"    retry: attempt {event.attempt} failed ({reason}), next in {event.wait:.2f}s")


def main() -> None:
    hazina.registry.subscribe(show)
    for request in range(1, 15):
        if request == 7:
            print("  -- the inventory service goes down for 0.3 s --")
            service.down_until = time.monotonic() + 0.3
        try:
            print(f"request {request:2}: {stock_level('sku-' + str(request))} in stock")
        except (TimeoutError, ConnectionError, hazina.CircuitOpenError) as error:
            print(f"request {request:2}: failed: {error!r} ({'; '.join(error.__notes__)})")
        time.sleep(0.05)

    print(f"\nthe service saw {service.requests} requests for 14 calls")
    for kind, policies in hazina.registry.snapshot().items():
        for name, stats in policies.items():
            print(f"{kind} {name!r}: {stats}")


if __name__ == "__main__":
    main()
