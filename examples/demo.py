"""hazina in one screen: a flaky dependency behind hazina's decorators.

Run it with ``python examples/demo.py``. Three short acts:

1. The "inventory service" fails now and then, and is down outright for a while in the
   middle: watch the cache answer repeated questions, retries absorb the blips, the
   breaker stop the hammering during the outage and a probe close it again, and the
   readiness report follow along.
2. A slow price lookup behind ``@cached``: eight threads miss one key at once and the
   lookup runs once; later calls are hits until the entry expires.
3. A search behind a per-user ``@rate_limited``: alice is held to her limit, bob is not
   held to hers.
4. Chaos: fault injection, off until now, is switched on at run time against the
   inventory service (a third of the calls fail, some are slow), and the breaker, the retry
   and the cache are seen coping; then it is switched off again.
"""

from __future__ import annotations

import json
import random
import threading
import time

import hazina
from hazina.health import memory_check, policies_check

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


# Recommended order: the cache outside, so a hit skips everything below it; then retry
# outside the breaker, so the breaker sees every attempt and retry waits out the
# breaker's retry_after (hazina's CircuitOpenError carries it) instead of hammering it.
@hazina.cached("inventory", ttl=0.2)
@hazina.retry("inventory", attempts=3, initial=0.02, max_delay=0.5)
@hazina.circuit_breaker("inventory", failure_threshold=4, open_for=0.2, success_threshold=1)
# Innermost and off by default: switched on at run time (act 4) to prove the rest works.
@hazina.chaos("inventory", enabled=False, error=ConnectionError, error_rate=0.3, seed=7)
def stock_level(sku: str) -> int:
    """How many of ``sku`` are in stock."""
    return service.stock(sku)


@hazina.cached("prices", ttl=0.5)
def price(sku: str) -> float:
    """A slow lookup: the kind of work a cache should do once."""
    time.sleep(0.1)
    return 9.99


@hazina.rate_limited("search", rate=3, per=1, key=lambda user, q: user)
def search(user: str, q: str) -> list[str]:
    """At most 3 searches a second per user."""
    return [f"{q} #{n}" for n in range(2)]


def show(event: object) -> None:
    """Print the events worth seeing (a registry listener)."""
    if isinstance(event, hazina.CircuitStateChanged):
        print(f"    breaker {event.name!r}: {event.old} -> {event.new}")
    elif isinstance(event, hazina.HealthStatusChanged):
        print(f"    health check {event.name!r}: {event.old} -> {event.new}")
    elif isinstance(event, hazina.RateLimitRejected):
        print(f"    rate limit {event.name!r}: refused {event.key!r}")
    elif isinstance(event, hazina.RetryScheduled):
        reason = type(event.error).__name__
        print(f"    retry: attempt {event.attempt} failed ({reason}), next in {event.wait:.2f}s")


@hazina.health_check("inventory-ping", timeout=0.5, tags="ready")
def inventory_ping() -> hazina.HealthResult:
    """Readiness: is the inventory service answering right now?"""
    if time.monotonic() < service.down_until:
        raise ConnectionError("inventory service unreachable")
    return hazina.HealthResult("healthy", data={"requests_so_far": service.requests})


memory_check(max_rss_bytes=1024 * 2**20, tags="live")
policies_check(open_status="degraded", tags="ready")


def print_health(moment: str) -> None:
    """Print the readiness report as a /health/ready endpoint would serve it."""
    report = hazina.registry.check_health_sync(tags="ready")
    print(f"  health ({moment}): {report.status}")
    for name, check in report.to_dict()["checks"].items():
        print(f"    {name}: {json.dumps(check)}")


def chaos_act() -> None:
    """Act 4: switch fault injection on at run time, watch the policies cope, switch it off."""
    print("\n-- chaos on: 3 in 10 inventory calls fail, 1 in 5 is 30 ms slow --")
    chaos = hazina.registry.chaos("inventory")
    breaker = hazina.registry.get("circuit_breaker", "inventory")
    retry = hazina.registry.get("retry", "inventory")
    before = retry.stats().successes_after_retry
    chaos.reconfigure(latency=0.03, latency_rate=0.2)  # changed while it runs
    chaos.enable()
    answered = 0
    for request in range(1, 13):
        sku = f"sku-{request % 4}"
        try:
            hits = stock_level.policy.stats().hits
            level = stock_level(sku)
            answered += 1
            source = " (from the cache)" if stock_level.policy.stats().hits > hits else ""
            print(f"  request {request:2}: {level} of {sku} in stock{source}")
        except (ConnectionError, TimeoutError, hazina.CircuitOpenError) as error:
            print(f"  request {request:2}: failed: {type(error).__name__}")
        time.sleep(0.04)
    chaos.disable()
    stats = chaos.stats()
    print(
        f"  chaos injected {stats.errors_injected} errors and {stats.latency_injected} delays "
        f"into {stats.calls} calls; {answered} of 12 requests were answered: "
        f"{retry.stats().successes_after_retry - before} after a retry, "
        f"{stock_level.policy.stats().hits} cache hits in all, "
        f"{breaker.stats().rejections} calls refused by the breaker in all"
    )
    print(f"  chaos off again: {stock_level('sku-9')} of sku-9 in stock")


def main() -> None:
    hazina.registry.subscribe(show)
    for request in range(1, 15):
        if request == 7:
            print("  -- the inventory service goes down for 0.3 s --")
            service.down_until = time.monotonic() + 0.3
        if request == 9:
            print_health("during the outage, breaker open")
        try:
            sku = f"sku-{request % 3}"
            hits = stock_level.policy.stats().hits
            level = stock_level(sku)
            source = " (from the cache)" if stock_level.policy.stats().hits > hits else ""
            print(f"request {request:2}: {level} of {sku} in stock{source}")
        except (TimeoutError, ConnectionError, hazina.CircuitOpenError) as error:
            print(f"request {request:2}: failed: {error!r} ({'; '.join(error.__notes__)})")
        time.sleep(0.05)

    print_health("after recovery")
    print(f"the service saw {service.requests} requests for 14 calls")

    print("\n-- a cached price lookup: 8 threads miss one key at once --")
    threads = [threading.Thread(target=price, args=("sku-1",)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(f"  then {price('sku-1')} from the cache; {price.policy.stats()}")

    print("\n-- a per-user search limit: 3 a second --")
    for user in ["alice", "alice", "alice", "alice", "bob"]:
        try:
            search(user, "cats")
            print(f"  search for {user}: ok")
        except hazina.RateLimitExceeded as error:
            print(f"  search for {user}: limited, retry after {error.retry_after:.2f}s")

    chaos_act()

    print("\n-- the registry --")
    for kind, policies in hazina.registry.snapshot().items():
        for name, stats in policies.items():
            print(f"{kind} {name!r}: {stats}")


if __name__ == "__main__":
    main()
