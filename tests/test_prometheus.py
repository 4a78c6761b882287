"""The Prometheus collector exposes every policy's stats, read at scrape time."""

from __future__ import annotations

import typing

import attrs
import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families

import hazina
from hazina._core.metrics import GAUGES, metrics_of, stats_class_of
from hazina._core.registry import KINDS, Registry
from hazina.prometheus import HazinaCollector
from hazina.testing import FakeClock, instant_waits

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(registry: hazina.Registry | None) -> tuple[Samples, dict[str, tuple[str, str]]]:
    """Every sample, and each family's (type, help), as Prometheus would read them."""
    collectors = prometheus_client.CollectorRegistry()
    collectors.register(HazinaCollector(registry))
    text = prometheus_client.generate_latest(collectors).decode()
    samples: Samples = {}
    families = {}
    for family in text_string_to_metric_families(text):
        families[family.name] = (family.type, family.documentation)
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples, families


def test_real_calls_show_up_as_counters_and_gauges(
    registry: hazina.Registry, clock: FakeClock
) -> None:
    """Counters end in _total, rates and sizes are gauges, each with a HELP line."""

    @hazina.cached("prices", registry=registry)
    @hazina.retry("prices", registry=registry, attempts=3)
    def price(sku: str) -> float:
        if not failures.pop(0):
            raise ConnectionError
        return 9.99

    failures = [False, True, True]
    with instant_waits():
        price("a")
        price("a")
        price("b")

    samples, families = scrape(registry)
    name = (("name", "prices"),)
    assert samples["hazina_retry_calls_total", name] == 2
    assert samples["hazina_retry_attempts_total", name] == 3
    assert samples["hazina_retry_successes_after_retry_total", name] == 1
    assert samples["hazina_cache_hits_total", name] == 1
    assert samples["hazina_cache_misses_total", name] == 2
    assert samples["hazina_cache_size", name] == 2
    assert samples["hazina_cache_hit_rate", name] == pytest.approx(1 / 3)
    assert families["hazina_retry_calls"][0] == "counter"
    assert families["hazina_cache_size"][0] == "gauge"
    assert families["hazina_cache_hit_rate"][0] == "gauge"
    assert all(help_text for _, help_text in families.values())


def test_the_breaker_state_is_a_one_hot_gauge(registry: hazina.Registry) -> None:
    """One sample per state, 1 for the current one; retry_after appears only while open."""
    breaker = registry.circuit_breaker("db", failure_threshold=1, open_for=30)
    samples, _ = scrape(registry)
    assert samples["hazina_circuit_breaker_state", (("name", "db"), ("state", "closed"))] == 1
    assert samples["hazina_circuit_breaker_state", (("name", "db"), ("state", "open"))] == 0
    assert not any(name == "hazina_circuit_breaker_retry_after" for name, _ in samples)
    assert not any(name == "hazina_circuit_breaker_failure_rate" for name, _ in samples)

    with pytest.raises(ConnectionError), breaker:
        raise ConnectionError
    samples, _ = scrape(registry)
    assert samples["hazina_circuit_breaker_state", (("name", "db"), ("state", "closed"))] == 0
    assert samples["hazina_circuit_breaker_state", (("name", "db"), ("state", "open"))] == 1
    assert samples["hazina_circuit_breaker_retry_after", (("name", "db"),)] == 30
    assert samples["hazina_circuit_breaker_failures_total", (("name", "db"),)] == 1


def test_health_status_is_one_hot_and_absent_before_the_first_run(
    registry: hazina.Registry,
) -> None:
    """A check's status has no sample until it has run, then one per status."""
    registry.health_check("db", lambda: False)
    samples, _ = scrape(registry)
    assert samples["hazina_health_check_runs_total", (("name", "db"),)] == 0
    assert not any(name == "hazina_health_check_status" for name, _ in samples)
    registry.check_health_sync()
    samples, _ = scrape(registry)
    assert samples["hazina_health_check_status", (("name", "db"), ("status", "unhealthy"))] == 1
    assert samples["hazina_health_check_status", (("name", "db"), ("status", "healthy"))] == 0


def test_the_default_registry_is_read_at_scrape_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """A collector made without a registry reads whatever hazina.registry is when scraped."""
    from hazina._core import registry as default

    fresh = hazina.Registry()
    monkeypatch.setattr(default, "registry", fresh)
    fresh.rate_limiter("api", rate=5)
    samples, _ = scrape(None)
    assert samples["hazina_rate_limiter_allowed_total", (("name", "api"),)] == 0


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_gets_metrics_from_its_stats_class(kind: str) -> None:
    """Every kind the registry holds has a stats class, and each number or enum in it is
    exported: the rule a new kind follows to get its metrics."""
    stats_class = stats_class_of(Registry, kind)
    assert stats_class is not None, f"Registry.{kind} or its policy's stats() lacks a return type"
    exported = {metric.field: metric.role for metric in metrics_of(kind, stats_class)}
    assert exported
    hints = typing.get_type_hints(stats_class)
    for field in attrs.fields(stats_class):
        if not {int, float} & {hints[field.name], *typing.get_args(hints[field.name])}:
            continue  # an enum (checked below) or a field that is no number
        if field.name in GAUGES:
            assert exported.get(field.name) in ("gauge", "one_hot"), field.name
        else:
            assert exported.get(field.name) == "counter", field.name
    for field in ("state", "status"):
        if field in hints:
            assert exported[field] == "one_hot"


def test_a_registry_of_each_kind_scrapes_cleanly(registry: hazina.Registry) -> None:
    """Policies of every kind in one registry give one family per field, names unique."""
    registry.circuit_breaker("a")
    registry.retry("a")
    registry.cache("a")
    registry.rate_limiter("a", rate=1)
    registry.health_check("a", lambda: True)
    registry.retry_budget("a")
    registry.fallback("a", value=None)
    registry.hedge("a", delay=1)
    registry.timeout("a", seconds=1)
    registry.bulkhead("a", max_concurrent=1)
    registry.chaos("a")
    _, families = scrape(registry)
    for kind in KINDS:
        assert any(name.startswith(f"hazina_{kind}_") for name in families), kind
