"""OpenTelemetry: observable instruments over the stats, span events for the events."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import hazina
import hazina.otel
from hazina._core.hooks import SPANS
from hazina.testing import instant_waits

Points = dict[tuple[str, tuple[tuple[str, Any], ...]], float]


@pytest.fixture
def reader() -> InMemoryMetricReader:
    """An SDK metric reader that collects on demand."""
    return InMemoryMetricReader()


@pytest.fixture
def spans() -> InMemorySpanExporter:
    """The spans finished during the test."""
    return InMemorySpanExporter()


@pytest.fixture
def tracer_provider(spans: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    return provider


@pytest.fixture
def handle(
    registry: hazina.Registry, reader: InMemoryMetricReader, tracer_provider: TracerProvider
) -> Iterator[hazina.otel.Instrumentation]:
    """The registry instrumented into the in-memory reader."""
    instrumented = hazina.otel.instrument(
        registry,
        meter_provider=MeterProvider(metric_readers=[reader]),
        tracer_provider=tracer_provider,
    )
    yield instrumented
    instrumented.uninstrument()


def points(reader: InMemoryMetricReader) -> Points:
    found: Points = {}
    data = reader.get_metrics_data()
    if data is None:
        return found
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    attributes = tuple(sorted((point.attributes or {}).items()))
                    # Histogram points have no .value (types differ across SDK versions).
                    number: Any = point
                    found[metric.name, attributes] = number.value
    return found


def test_instruments_observe_the_stats(
    registry: hazina.Registry,
    reader: InMemoryMetricReader,
    handle: hazina.otel.Instrumentation,
) -> None:
    """hazina.<kind>.<field> per policy with hazina.name, read afresh at each collection."""
    breaker = registry.circuit_breaker("db", failure_threshold=1)
    assert points(reader)["hazina.circuit_breaker.calls", (("hazina.name", "db"),)] == 0

    with pytest.raises(ConnectionError), breaker:
        raise ConnectionError
    seen = points(reader)
    assert seen["hazina.circuit_breaker.failures", (("hazina.name", "db"),)] == 1
    state = (("hazina.name", "db"), ("hazina.state", "open"))
    assert seen["hazina.circuit_breaker.state", state] == 1
    closed = (("hazina.name", "db"), ("hazina.state", "closed"))
    assert seen["hazina.circuit_breaker.state", closed] == 0
    assert seen["hazina.circuit_breaker.retry_after", (("hazina.name", "db"),)] == 30


def test_rare_events_become_events_on_the_current_span(
    registry: hazina.Registry,
    tracer_provider: TracerProvider,
    spans: InMemorySpanExporter,
    handle: hazina.otel.Instrumentation,
) -> None:
    """A retry that fails twice adds its attempts and its give-up to the caller's span."""

    @hazina.retry("fetch", registry=registry, attempts=2)
    def fetch() -> None:
        raise TimeoutError("slow")

    with (
        instant_waits(),
        tracer_provider.get_tracer("test").start_as_current_span("request"),
        pytest.raises(TimeoutError),
    ):
        fetch()
    [span] = spans.get_finished_spans()
    names = [event.name for event in span.events]
    assert names == ["hazina.retry_scheduled", "hazina.retry_gave_up"]
    gave_up = span.events[1].attributes
    assert gave_up is not None
    assert gave_up["hazina.name"] == "fetch"
    assert gave_up["hazina.attempts"] == 2
    assert "TimeoutError" in str(gave_up["hazina.error"])


def test_uninstrument_stops_span_events_and_observations(
    registry: hazina.Registry,
    reader: InMemoryMetricReader,
    tracer_provider: TracerProvider,
    spans: InMemorySpanExporter,
    handle: hazina.otel.Instrumentation,
) -> None:
    """After uninstrument() nothing is observed and no span gets hazina events."""
    breaker = registry.circuit_breaker("db")
    breaker.force_open()
    handle.uninstrument()
    with (
        tracer_provider.get_tracer("test").start_as_current_span("request"),
        pytest.raises(hazina.CircuitOpenError),
        breaker,
    ):
        pass
    assert spans.get_finished_spans()[0].events == ()
    assert not any(name.startswith("hazina.") for name, _ in points(reader))


def test_every_kind_gets_instruments(
    registry: hazina.Registry,
    reader: InMemoryMetricReader,
    handle: hazina.otel.Instrumentation,
    every_kind: Callable[[hazina.Registry, str], None],
) -> None:
    """One policy of each kind is observed under hazina.<kind>.*."""
    every_kind(registry, "a")
    observed = {name.split(".")[1] for name, _ in points(reader)}
    assert observed == set(hazina.registry.stats())


# -- cache loads ---------------------------------------------------------------------------


def load_events(span: Any) -> list[dict[str, Any]]:
    """The attributes of each hazina.cache_load event of ``span``."""
    return [dict(event.attributes) for event in span.events if event.name == "hazina.cache_load"]


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_a_cache_load_is_an_event_on_the_callers_span(
    registry: hazina.Registry,
    tracer_provider: TracerProvider,
    spans: InMemorySpanExporter,
    handle: hazina.otel.Instrumentation,
    is_async: bool,
) -> None:
    """Each miss whose caller runs the loader marks the caller's span with the cache's name
    and the key; hits mark nothing, and no registry event is emitted for either."""
    events: list[object] = []
    registry.subscribe(events.append)
    skus = ["apple", "apple", "kiwi"]
    if is_async:

        @hazina.cached("prices", registry=registry)
        async def price_async(sku: str) -> int:
            return len(sku)

        async def ask_all() -> list[int]:
            return [await price_async(sku) for sku in skus]

        # asyncio.run inside the span: its task starts from a copy of this context.
        with tracer_provider.get_tracer("test").start_as_current_span("request"):
            assert asyncio.run(ask_all()) == [5, 5, 4]
    else:

        @hazina.cached("prices", registry=registry)
        def price(sku: str) -> int:
            return len(sku)

        with tracer_provider.get_tracer("test").start_as_current_span("request"):
            assert [price(sku) for sku in skus] == [5, 5, 4]
    [span] = spans.get_finished_spans()
    loads = load_events(span)
    assert [load["hazina.name"] for load in loads] == ["prices", "prices"]
    assert "apple" in str(loads[0]["hazina.key"])
    assert "kiwi" in str(loads[1]["hazina.key"])
    assert [event.name for event in span.events] == ["hazina.cache_load"] * 2
    assert events == []


def test_a_caller_that_joins_a_load_gets_no_load_event(
    registry: hazina.Registry,
    tracer_provider: TracerProvider,
    spans: InMemorySpanExporter,
    handle: hazina.otel.Instrumentation,
) -> None:
    """Of two threads asking for one key, only the one that runs the loader gets the event."""
    release = threading.Event()

    @hazina.cached("profile", registry=registry)
    def profile(user: int) -> int:
        release.wait(5)
        return user

    tracer = tracer_provider.get_tracer("test")

    def ask(span_name: str) -> None:
        with tracer.start_as_current_span(span_name):
            assert profile(7) == 7

    leader = threading.Thread(target=ask, args=("leader",))
    leader.start()
    while profile.policy.stats().loads == 0:
        time.sleep(0.001)
    joiner = threading.Thread(target=ask, args=("joiner",))
    joiner.start()
    while profile.policy.stats().coalesced == 0:
        time.sleep(0.001)
    release.set()
    leader.join()
    joiner.join()
    by_name = {span.name: span for span in spans.get_finished_spans()}
    assert len(load_events(by_name["leader"])) == 1
    assert load_events(by_name["joiner"]) == []


def test_cache_loads_are_marked_only_for_instrumented_registries(
    registry: hazina.Registry,
    reader: InMemoryMetricReader,
    tracer_provider: TracerProvider,
    spans: InMemorySpanExporter,
) -> None:
    """A cache of a registry nobody instrumented marks nothing; with two instrumented,
    taking one down leaves the other's loads marked; with none, the hook is gone."""
    other = hazina.Registry()
    mine = hazina.cached("mine", registry=registry)(lambda key: key)
    theirs = hazina.cached("theirs", registry=other)(lambda key: key)
    tracer = tracer_provider.get_tracer("test")

    def marked() -> list[str]:
        spans.clear()
        with tracer.start_as_current_span("request"):
            mine(object())
            theirs(object())
        [span] = spans.get_finished_spans()
        return [load["hazina.name"] for load in load_events(span)]

    assert marked() == []
    first = hazina.otel.instrument(registry, meter_provider=MeterProvider())
    assert marked() == ["mine"]
    second = hazina.otel.instrument(other, meter_provider=MeterProvider())
    assert marked() == ["mine", "theirs"]
    first.uninstrument()
    first.uninstrument()  # twice is harmless: it must not take the other's hook away
    assert marked() == ["theirs"]
    second.uninstrument()
    assert marked() == []
    # Nothing instrumented: a load does not even call into hazina.otel.
    assert SPANS.cache_load is None


def test_a_load_outside_any_recording_span_adds_nothing_and_loads(
    registry: hazina.Registry, handle: hazina.otel.Instrumentation
) -> None:
    """With no current span (or one not recording) the load runs as usual."""
    loaded = hazina.cached("plain", registry=registry)(lambda key: key * 2)
    assert loaded(21) == 42
    assert loaded.policy.stats().loads == 1


def test_a_cache_load_on_redis_is_marked_and_a_fleet_hit_is_not(
    redis_url: str, tracer_provider: TracerProvider, spans: InMemorySpanExporter
) -> None:
    """The process that loads a key into the shared cache marks its caller's span; another
    process finding the value in Redis marks nothing."""
    from hazina.redis import RedisBackend

    def on_redis() -> hazina.Registry:
        backend = RedisBackend.from_url(redis_url, timeout=2.0)
        return hazina.Registry(backend=backend)

    one, other = on_redis(), on_redis()
    handles = [
        hazina.otel.instrument(registry, meter_provider=MeterProvider())
        for registry in (one, other)
    ]
    try:
        first = hazina.cached("users", registry=one, ttl=60)(lambda user: user)
        second = hazina.cached("users", registry=other, ttl=60)(lambda user: user)
        tracer = tracer_provider.get_tracer("test")
        with tracer.start_as_current_span("loads"):
            assert first(7) == 7
        with tracer.start_as_current_span("finds"):
            assert second(7) == 7
    finally:
        for handle in handles:
            handle.uninstrument()
    by_name = {span.name: span for span in spans.get_finished_spans()}
    assert [load["hazina.name"] for load in load_events(by_name["loads"])] == ["users"]
    assert load_events(by_name["finds"]) == []
    assert second.policy.stats().hits == 1


def test_a_span_that_cannot_take_the_load_event_does_not_fail_the_load(
    registry: hazina.Registry,
    handle: hazina.otel.Instrumentation,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Marking the span runs inside the caller's load: if tracing itself breaks, the load
    still runs and caches its value, and the failure is logged."""

    def broken() -> None:
        raise RuntimeError("tracing is broken")

    monkeypatch.setattr(trace, "get_current_span", broken)
    doubled = hazina.cached("doubled", registry=registry)(lambda key: key * 2)
    assert doubled(21) == 42
    assert doubled(21) == 42
    stats = doubled.policy.stats()
    assert (stats.loads, stats.hits, stats.load_errors) == (1, 1, 0)
    assert "could not add a cache load" in caplog.text
