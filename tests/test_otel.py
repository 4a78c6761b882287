"""OpenTelemetry: observable instruments over the stats, span events for the events."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import hazina
import hazina.otel
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
    registry: hazina.Registry, reader: InMemoryMetricReader, handle: hazina.otel.Instrumentation
) -> None:
    """One policy of each kind is observed under hazina.<kind>.*."""
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
    observed = {name.split(".")[1] for name, _ in points(reader)}
    assert observed == set(hazina.registry.stats())
