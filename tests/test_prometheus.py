"""The Prometheus collector exposes every policy's stats, read at scrape time."""

from __future__ import annotations

import gc
import threading
import typing
import weakref
from collections.abc import Callable

import attrs
import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families

import hazina
from hazina._core.metrics import GAUGES, metrics_of, stats_class_of
from hazina._core.registry import KINDS, Registry
from hazina.prometheus import HazinaCollector, exposition
from hazina.testing import FakeClock, instant_waits

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(
    registry: hazina.Registry | HazinaCollector | None,
) -> tuple[Samples, dict[str, tuple[str, str]]]:
    """Every sample, and each family's (type, help), as Prometheus would read them; a
    collector given instead of a registry is scraped again as it is (its caches kept)."""
    collectors = prometheus_client.CollectorRegistry()
    collector = registry if isinstance(registry, HazinaCollector) else HazinaCollector(registry)
    collectors.register(collector)
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


def test_a_registry_of_each_kind_scrapes_cleanly(
    registry: hazina.Registry, every_kind: Callable[[hazina.Registry, str], None]
) -> None:
    """Policies of every kind in one registry give one family per field, names unique."""
    every_kind(registry, "a")
    _, families = scrape(registry)
    for kind in KINDS:
        assert any(name.startswith(f"hazina_{kind}_") for name in families), kind


def names_in(samples: Samples, metric: str) -> set[str]:
    """The policy names that have a sample of ``metric``."""
    return {dict(labels)["name"] for name, labels in samples if name == metric}


def test_policies_added_and_removed_between_scrapes_show_up_and_disappear(
    registry: hazina.Registry,
) -> None:
    """One collector scraped again and again follows the registry: a policy created since
    the last scrape appears, a removed one disappears, and one removed and made again
    under the same name reads its own fresh stats."""
    collector = HazinaCollector(registry)
    first = registry.circuit_breaker("a", failure_threshold=1)
    registry.circuit_breaker("b")
    with pytest.raises(ConnectionError), first:
        raise ConnectionError
    samples, _ = scrape(collector)
    assert names_in(samples, "hazina_circuit_breaker_calls_total") == {"a", "b"}
    assert samples["hazina_circuit_breaker_state", (("name", "a"), ("state", "open"))] == 1

    registry.circuit_breaker("c")
    samples, _ = scrape(collector)
    assert names_in(samples, "hazina_circuit_breaker_calls_total") == {"a", "b", "c"}
    assert names_in(samples, "hazina_circuit_breaker_state") == {"a", "b", "c"}

    # As many policies as before, but not the same ones.
    registry.remove("circuit_breaker", "b")
    registry.circuit_breaker("d")
    samples, _ = scrape(collector)
    assert names_in(samples, "hazina_circuit_breaker_calls_total") == {"a", "c", "d"}
    assert names_in(samples, "hazina_circuit_breaker_state") == {"a", "c", "d"}
    assert samples["hazina_circuit_breaker_state", (("name", "d"), ("state", "closed"))] == 1

    registry.remove("circuit_breaker", "a")
    registry.circuit_breaker("a")
    samples, _ = scrape(collector)
    assert samples["hazina_circuit_breaker_calls_total", (("name", "a"),)] == 0
    assert samples["hazina_circuit_breaker_state", (("name", "a"), ("state", "closed"))] == 1
    assert samples["hazina_circuit_breaker_state", (("name", "a"), ("state", "open"))] == 0
    assert "hazina_circuit_breaker_retry_after" not in {name for name, _ in samples}

    for name in ("a", "c", "d"):
        registry.remove("circuit_breaker", name)
    registry.retry("r")
    samples, families = scrape(collector)
    assert not any(name.startswith("hazina_circuit_breaker") for name in families)
    assert names_in(samples, "hazina_retry_calls_total") == {"r"}


def test_stats_move_between_scrapes_of_one_collector(
    registry: hazina.Registry, clock: FakeClock
) -> None:
    """Counters, gauges that come and go with None, and a one-hot state that leaves a
    value and comes back to it all read as they are now, scrape after scrape."""
    collector = HazinaCollector(registry)
    breaker = registry.circuit_breaker("db", failure_threshold=1, open_for=10, success_threshold=1)
    registry.circuit_breaker("other")
    check_ok = [True]
    registry.health_check("api", lambda: check_ok[0])

    def state(samples: Samples) -> list[str]:
        return [
            value
            for (metric, labels), reading in samples.items()
            if metric == "hazina_circuit_breaker_state" and ("name", "db") in labels
            for key, value in labels
            if key == "state" and reading == 1
        ]

    def status(samples: Samples) -> list[str]:
        return [
            value
            for (metric, labels), reading in samples.items()
            if metric == "hazina_health_check_status" and reading == 1
            for key, value in labels
            if key == "status"
        ]

    samples, _ = scrape(collector)
    assert state(samples) == ["closed"]
    assert status(samples) == []  # the check has not run: no sample at all
    assert samples["hazina_circuit_breaker_calls_total", (("name", "db"),)] == 0

    with breaker:
        pass
    with pytest.raises(ConnectionError), breaker:
        raise ConnectionError
    registry.check_health_sync()
    samples, _ = scrape(collector)
    assert state(samples) == ["open"]
    assert status(samples) == ["healthy"]
    assert samples["hazina_circuit_breaker_calls_total", (("name", "db"),)] == 2
    assert samples["hazina_circuit_breaker_failures_total", (("name", "db"),)] == 1
    assert samples["hazina_circuit_breaker_retry_after", (("name", "db"),)] == 10
    assert samples["hazina_circuit_breaker_state", (("name", "other"), ("state", "closed"))] == 1

    clock.advance(4)
    check_ok[0] = False
    registry.check_health_sync()
    samples, _ = scrape(collector)
    assert samples["hazina_circuit_breaker_retry_after", (("name", "db"),)] == 6
    assert status(samples) == ["unhealthy"]

    clock.advance(6)
    samples, _ = scrape(collector)
    assert state(samples) == ["half_open"]
    assert "hazina_circuit_breaker_retry_after" not in {name for name, _ in samples}

    with breaker:
        pass
    check_ok[0] = True
    registry.check_health_sync()
    samples, _ = scrape(collector)
    assert state(samples) == ["closed"]
    assert status(samples) == ["healthy"]
    assert samples["hazina_circuit_breaker_calls_total", (("name", "db"),)] == 3
    assert samples["hazina_health_check_runs_total", (("name", "api"),)] == 3


@pytest.mark.parametrize("writer", ["generate_latest", "exposition"])
def test_concurrent_scrapes_while_policies_come_and_go(
    registry: hazina.Registry, writer: str
) -> None:
    """Threads scraping one collector (or calling exposition() on one registry) while
    another thread adds and removes policies each get a whole exposition: every breaker
    in it has one state at 1 and every sample's label set appears once per family."""
    collector = HazinaCollector(registry)
    collectors = prometheus_client.CollectorRegistry()
    collectors.register(collector)

    def write() -> bytes:
        if writer == "exposition":
            return exposition(registry)
        return prometheus_client.generate_latest(collectors)

    for number in range(50):
        registry.circuit_breaker(f"steady-{number}")
    stop = threading.Event()
    problems: list[str] = []
    scrapes = [0]

    def churn() -> None:
        number = 0
        while not stop.is_set():
            registry.circuit_breaker(f"passing-{number}")
            registry.retry(f"passing-{number}")
            if number >= 3:
                registry.remove("circuit_breaker", f"passing-{number - 3}")
                registry.remove("retry", f"passing-{number - 3}")
            number += 1

    def scraper() -> None:
        try:
            while not stop.is_set():
                text = write().decode()
                ones: dict[str, int] = {}
                for family in text_string_to_metric_families(text):
                    label_sets = [tuple(sorted(s.labels.items())) for s in family.samples]
                    if len(label_sets) != len(set(label_sets)):
                        problems.append(f"{family.name}: a label set twice")
                    if family.name == "hazina_circuit_breaker_state":
                        for sample in family.samples:
                            name = sample.labels["name"]
                            ones[name] = ones.get(name, 0) + int(sample.value)
                if sorted(set(ones.values())) != [1]:
                    problems.append(f"states at 1 per breaker: {set(ones.values())}")
                if sum(name.startswith("steady-") for name in ones) != 50:
                    problems.append("a steady breaker missing")
                scrapes[0] += 1
        except Exception as error:  # pragma: no cover - reported below
            problems.append(repr(error))

    threads = [threading.Thread(target=churn)] + [
        threading.Thread(target=scraper) for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    stop.wait(0.3)
    stop.set()
    for thread in threads:
        thread.join()
    assert not problems, problems[:5]
    assert scrapes[0] >= 3


# -- exposition(): the same text, written by hazina ------------------------------------------


def through_prometheus_client(registry: hazina.Registry) -> bytes:
    """What prometheus_client writes for a registry holding only a fresh collector."""
    collectors = prometheus_client.CollectorRegistry()
    collectors.register(HazinaCollector(registry))
    return prometheus_client.generate_latest(collectors)


def assert_same_text(registry: hazina.Registry) -> str:
    """exposition() is byte for byte generate_latest; the text, for further checks."""
    written = exposition(registry)
    assert written == through_prometheus_client(registry)
    return written.decode()


def parsed(text: str) -> Samples:
    """Every sample of ``text``, read back by prometheus_client's parser."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_exposition_matches_generate_latest_after_real_calls_on_every_kind(
    registry: hazina.Registry, clock: FakeClock, every_kind: Callable[[hazina.Registry, str], None]
) -> None:
    """Breakers closed, open, half-open and forced open, caches with hits and misses, limiters that
    admitted and refused, checks healthy, degraded, unhealthy and not yet run, and every
    other kind: exposition() writes exactly what generate_latest does."""
    registry.circuit_breaker("closed")
    registry.circuit_breaker("open", failure_threshold=1, open_for=60)
    registry.circuit_breaker("half-open", failure_threshold=1, open_for=30)
    for name in ("open", "half-open"):
        with pytest.raises(ConnectionError), registry.circuit_breaker(name):
            raise ConnectionError
    registry.circuit_breaker("forced").force_open()  # a forced state is one more member
    clock.advance(10)

    @hazina.cached("users", registry=registry)
    @hazina.rate_limited("users", registry=registry, rate=2, per=60, burst=2)
    @hazina.retry("users", registry=registry, attempts=3)
    def user(number: int) -> int:
        return number

    user(1)
    user(1)
    user(2)
    with pytest.raises(hazina.RateLimitExceeded):
        user(3)

    def reporting(status: hazina.HealthStatus) -> Callable[[], hazina.HealthStatus]:
        return lambda: status

    every_kind(registry, "every kind")
    for status in hazina.HealthStatus:
        registry.health_check(str(status), reporting(status))
    registry.check_health_sync()
    registry.health_check("never-run", lambda: True)
    first = assert_same_text(registry)

    clock.advance(25)  # the half-open one's wait is over; the open one counts down
    text = assert_same_text(registry)
    assert text != first
    samples = parsed(text)
    states = {
        labels: value
        for (metric, labels), value in samples.items()
        if metric == "hazina_circuit_breaker_state" and value == 1
    }
    assert {dict(labels)["name"]: dict(labels)["state"] for labels in states} == {
        "closed": "closed",
        "open": "open",
        "half-open": "half_open",
        "forced": "forced_open",
        "every kind": "closed",
    }
    statuses = {
        dict(labels)["name"]: dict(labels)["status"]
        for (metric, labels), value in samples.items()
        if metric == "hazina_health_check_status" and value == 1
    }
    assert statuses == {
        **{str(status): str(status) for status in hazina.HealthStatus},
        "every kind": "healthy",
    }
    assert samples["hazina_cache_hits_total", (("name", "users"),)] == 1
    assert samples["hazina_rate_limiter_rejected_total", (("name", "users"),)] == 1
    for kind in KINDS:
        assert f"# TYPE hazina_{kind}_" in text, kind


def test_exposition_writes_values_as_prometheus_client_does(
    registry: hazina.Registry, clock: FakeClock
) -> None:
    """Values Go writes with an exponent (a breaker open for 1,234,567.5 s), fractions,
    tiny durations and zeros come out as generate_latest writes them."""

    def slow() -> bool:
        clock.advance(0.00001)
        return True

    registry.health_check("slow", slow)
    registry.check_health_sync()
    registry.circuit_breaker("long", failure_threshold=1, open_for=1_234_567.5)
    registry.circuit_breaker("longer", failure_threshold=1, open_for=2e7)
    for name in ("long", "longer"):
        with pytest.raises(ConnectionError), registry.circuit_breaker(name):
            raise ConnectionError
    text = assert_same_text(registry)
    assert 'hazina_circuit_breaker_retry_after{name="long"} 1.2345675e+06\n' in text
    assert 'hazina_circuit_breaker_retry_after{name="longer"} 2e+07\n' in text
    clock.advance(0.25)
    assert 'hazina_circuit_breaker_retry_after{name="long"} 1.23456725e+06\n' in (
        assert_same_text(registry)
    )
    clock.advance(1_000_000)
    assert_same_text(registry)


@pytest.mark.parametrize(
    "name", ['say "hi"', "back\\slash", "two\nlines", "ünïcödé ✓", "a,b=c}{", "trailing\\"]
)
def test_exposition_escapes_names_as_generate_latest_does(
    registry: hazina.Registry, name: str
) -> None:
    """A policy name with quotes, backslashes, newlines or other characters is written
    exactly as generate_latest writes it, and the parser reads the name back."""
    registry.circuit_breaker(name)
    registry.health_check(name, lambda: False)
    registry.check_health_sync()
    samples = parsed(assert_same_text(registry))
    assert samples["hazina_circuit_breaker_calls_total", (("name", name),)] == 0
    assert samples["hazina_health_check_status", (("name", name), ("status", "unhealthy"))] == 1


def test_exposition_follows_policies_added_and_removed(registry: hazina.Registry) -> None:
    """Called again and again on one registry, exposition() shows a policy made since
    the last call, drops a removed one, reads a remade one's fresh stats, and writes
    nothing once the registry is empty."""
    assert exposition(registry) == b""
    breaker = registry.circuit_breaker("a", failure_threshold=1)
    registry.circuit_breaker("b")
    with pytest.raises(ConnectionError), breaker:
        raise ConnectionError
    assert names_in(parsed(assert_same_text(registry)), "hazina_circuit_breaker_state") == {
        "a",
        "b",
    }

    registry.remove("circuit_breaker", "b")
    registry.circuit_breaker("c")  # as many as before, not the same ones
    registry.retry("r")
    samples = parsed(assert_same_text(registry))
    assert names_in(samples, "hazina_circuit_breaker_calls_total") == {"a", "c"}
    assert samples["hazina_circuit_breaker_state", (("name", "a"), ("state", "open"))] == 1
    assert names_in(samples, "hazina_retry_calls_total") == {"r"}

    registry.remove("circuit_breaker", "a")
    registry.circuit_breaker("a")
    samples = parsed(assert_same_text(registry))
    assert samples["hazina_circuit_breaker_state", (("name", "a"), ("state", "closed"))] == 1
    assert samples["hazina_circuit_breaker_failures_total", (("name", "a"),)] == 0

    for name in ("a", "c"):
        registry.remove("circuit_breaker", name)
    registry.remove("retry", "r")
    assert exposition(registry) == b""


def test_exposition_reads_the_default_registry_at_the_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a registry, exposition() reads whatever hazina.registry is at the call."""
    from hazina._core import registry as default

    for name in ("first", "second"):
        fresh = hazina.Registry()
        monkeypatch.setattr(default, "registry", fresh)
        fresh.rate_limiter(name, rate=5)
        assert names_in(parsed(exposition().decode()), "hazina_rate_limiter_allowed_total") == {
            name
        }


def test_exposition_keeps_no_registry_alive() -> None:
    """A registry exposition() has read is freed once the application drops it."""
    registry = hazina.Registry()
    registry.circuit_breaker("db")
    assert b'name="db"' in exposition(registry)
    dropped = weakref.ref(registry)
    del registry
    gc.collect()
    assert dropped() is None
