"""What the ability to reconfigure costs a hot path: nothing until a driver must change.

Each group times one hot path three ways in one run: ``fresh`` (decorated, never
reconfigured), ``slow_path_change`` (after a reconfigure of values only the policy's
slow paths read: the function keeps its own driver) and ``driver_change`` (after a
reconfigure that needs a new driver, which a function decorated before it reaches
through one forwarding frame; see ``hazina/_core/swap.py``). A driver change may also
pick a costlier variant (the breaker's is a slow-call rule, which times each call; the
cache's is ``typed=True``, which builds a key per call), so that row is the forwarder
plus the new variant.

Groups: ``reconfigured-breaker-closed-sync``, ``reconfigured-retry-first-try-sync``,
``reconfigured-cache-hit-sync``, ``reconfigured-rate-limit-admitted-sync``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

import hazina
from benchmarks.conftest import sync_group


def f(x: int) -> int:
    return x


def breaker(change: dict[str, Any] | None) -> Callable[[int], int]:
    g = hazina.circuit_breaker("b", registry=hazina.Registry())(f)
    if change is not None:
        g.policy.reconfigure(**change)
    return g


def retry(change: dict[str, Any] | None) -> Callable[[int], int]:
    g = hazina.retry("r", attempts=3, registry=hazina.Registry())(f)
    if change is not None:
        g.policy.reconfigure(**change)
    return g


def cache(change: dict[str, Any] | None) -> Callable[[int], int]:
    g = hazina.cached("c", ttl=3600, registry=hazina.Registry())(f)
    g(1)
    if change is not None:
        g.policy.reconfigure(**change)
    return g


def limiter(change: dict[str, Any] | None) -> Callable[[int], int]:
    g = hazina.rate_limited("l", rate=1e8, registry=hazina.Registry())(f)
    if change is not None:
        g.policy.reconfigure(**change)
    return g


CASES = {
    "breaker-closed": (breaker, {"open_for": 5}, {"slow_call_duration": 60}),
    "retry-first-try": (retry, {"attempts": 5}, {"on_result": lambda result: False}),
    "cache-hit": (cache, {"ttl": 7200}, {"typed": True}),
    "rate-limit-admitted": (limiter, {"max_keys": 1000}, {"rate": 5e8}),
}


def _run(benchmark: BenchmarkFixture, case: str, how: str) -> None:
    make, slow, driver = CASES[case]
    change = {"fresh": None, "slow_path_change": slow, "driver_change": driver}[how]
    g = make(change)
    assert benchmark(g, 1) == 1


for _case in CASES:

    @sync_group(f"reconfigured-{_case}-sync")
    @pytest.mark.parametrize("how", ["fresh", "slow_path_change", "driver_change"])
    def _test(benchmark: BenchmarkFixture, how: str, case: str = _case) -> None:
        _run(benchmark, case, how)

    globals()[f"test_{_case.replace('-', '_')}"] = _test
