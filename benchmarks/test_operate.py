"""What operating hazina costs: hot paths with logging and exporters on, and a scrape.

Groups:

- ``operate-<path>``: one hazina hot path (a closed breaker's call, a cache hit, a
  retry's first-try success, an admitted limiter call, an open breaker's rejection),
  timed per call, each in three setups: ``plain`` (nothing configured), ``logging``
  (the root logger configured at INFO with a handler, as services run) and
  ``exporters`` (a Prometheus ``HazinaCollector`` registered and OpenTelemetry
  instrumented on the same registry). The three rows should match: logging and the
  exporters add nothing per call. The ``plain`` rows also run on a checkout without
  the exporters (they skip the ``exporters`` rows), which is how a branch is compared
  with main in the same session.
- ``scrape-<size>``: one Prometheus scrape of a registry of 10, 100 or 1,000 policies
  (the four call-wrapping kinds in turn): ``collect`` alone (hazina's part of a
  collector scrape: stats and samples), ``generate_latest`` (the whole collector scrape:
  prometheus_client's rendering too), ``render`` (``generate_latest`` of the same
  families collected beforehand: prometheus_client's rendering alone, the floor of
  ``generate_latest``) and ``exposition`` (``hazina.prometheus.exposition()``: the same
  bytes, written by hazina). Best read with ``--benchmark-timer=time.process_time``.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

import hazina
from benchmarks.conftest import sync_group

SETUPS = ["plain", "logging", "exporters"]
HAS_EXPORTERS = importlib.util.find_spec("hazina.prometheus") is not None


@pytest.fixture(params=SETUPS)
def setup(request: pytest.FixtureRequest) -> Iterator[hazina.Registry]:
    """A registry in one of the three setups."""
    registry = hazina.Registry()
    if request.param == "logging":
        root = logging.getLogger()
        handler = logging.StreamHandler(open("/dev/null", "w"))  # noqa: SIM115
        root.addHandler(handler)
        level = root.level
        root.setLevel(logging.INFO)
        yield registry
        root.setLevel(level)
        root.removeHandler(handler)
        handler.stream.close()
        return
    if request.param == "exporters":
        if not HAS_EXPORTERS:
            pytest.skip("this checkout has no exporters")
        import prometheus_client
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        from hazina.otel import instrument
        from hazina.prometheus import HazinaCollector

        collectors = prometheus_client.CollectorRegistry()
        collectors.register(HazinaCollector(registry))
        handle = instrument(
            registry, meter_provider=MeterProvider(metric_readers=[InMemoryMetricReader()])
        )
        yield registry
        handle.uninstrument()
        return
    yield registry


def f(x: int) -> int:
    return x


@sync_group("operate-breaker-closed")
def test_breaker_closed(benchmark: BenchmarkFixture, setup: hazina.Registry) -> None:
    g = hazina.circuit_breaker("b", registry=setup)(f)
    assert benchmark(g, 1) == 1


@sync_group("operate-cache-hit")
def test_cache_hit(benchmark: BenchmarkFixture, setup: hazina.Registry) -> None:
    g = hazina.cached("c", registry=setup)(f)
    g(1)
    assert benchmark(g, 1) == 1


@sync_group("operate-retry-first-try")
def test_retry_first_try(benchmark: BenchmarkFixture, setup: hazina.Registry) -> None:
    g = hazina.retry("r", registry=setup)(f)
    assert benchmark(g, 1) == 1


@sync_group("operate-limiter-admitted")
def test_limiter_admitted(benchmark: BenchmarkFixture, setup: hazina.Registry) -> None:
    g = hazina.rate_limited("l", registry=setup, rate=1e9)(f)
    assert benchmark(g, 1) == 1


@sync_group("operate-breaker-open-rejects")
def test_breaker_open_rejects(benchmark: BenchmarkFixture, setup: hazina.Registry) -> None:
    g = hazina.circuit_breaker("b", registry=setup)(f)
    g.policy.force_open()

    def rejected() -> int:
        try:
            g(1)
        except hazina.CircuitOpenError:
            return 1
        return 0

    assert benchmark(rejected) == 1


@sync_group("operate-limiter-rejects")
def test_limiter_rejects(benchmark: BenchmarkFixture, setup: hazina.Registry) -> None:
    g = hazina.rate_limited("l", registry=setup, rate=1, per=3600)(f)
    g(1)

    def rejected() -> int:
        try:
            g(1)
        except hazina.RateLimitExceeded:
            return 1
        return 0

    assert benchmark(rejected) == 1


# -- scrape ------------------------------------------------------------------------------


def populated(size: int) -> hazina.Registry:
    """``size`` policies, the four call-wrapping kinds in turn, each called once."""
    registry = hazina.Registry()
    makers: list[Callable[[str], Any]] = [
        registry.circuit_breaker,
        registry.retry,
        registry.cache,
        lambda name: registry.rate_limiter(name, rate=100),
    ]
    for number in range(size):
        makers[number % 4](f"policy-{number}")
    return registry


@pytest.mark.skipif(not HAS_EXPORTERS, reason="this checkout has no exporters")
@pytest.mark.parametrize("size", [10, 100, 1000])
@pytest.mark.parametrize("part", ["collect", "generate_latest", "render", "exposition"])
def test_scrape(benchmark: BenchmarkFixture, size: int, part: str) -> None:
    import prometheus_client

    from hazina.prometheus import HazinaCollector, exposition

    benchmark.group = f"scrape-{size}"
    registry = populated(size)
    collector = HazinaCollector(registry)
    collectors = prometheus_client.CollectorRegistry()
    if part == "render":
        collected = list(collector.collect())
        collectors.register(Collected(collected))
    else:
        collectors.register(collector)
    if part == "collect":
        families = benchmark(lambda: list(collector.collect()))
        assert sum(len(family.samples) for family in families) >= 7 * size
    elif part == "exposition":
        text = benchmark(exposition, registry)
        assert text == prometheus_client.generate_latest(collectors)
    else:
        text = benchmark(prometheus_client.generate_latest, collectors)
        assert text.count(b"\n") >= 7 * size


class Collected:
    """A collector handing out families collected beforehand."""

    def __init__(self, families: list[Any]) -> None:
        self.families = families

    def collect(self) -> list[Any]:
        return self.families
