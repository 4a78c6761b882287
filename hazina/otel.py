"""OpenTelemetry for every hazina policy: observable instruments, and span events.

Install the extra (``pip install 'hazina[otel]'``) and call :func:`instrument` once::

    import hazina.otel

    handle = hazina.otel.instrument()
    ...
    handle.uninstrument()

Each stats field of each kind becomes an observable instrument ``hazina.<kind>.<field>``
(counters for counts, gauges for levels, the same rule as the Prometheus collector), one
observation per policy with the attribute ``hazina.name``; a breaker's ``state`` (a
check's ``status``) is a one-hot gauge with a ``hazina.state`` (``hazina.status``)
attribute. Every event a policy emits (a retry scheduled or given up, a breaker
rejecting or changing state, a limiter refusing or delaying a call, ...) is added to the
caller's current span as ``hazina.<event>`` with the event's fields as attributes. A
cache load (a miss whose caller runs the loader) adds ``hazina.cache_load`` with
``hazina.name`` and ``hazina.key``; it is no registry event, so listeners and logs do
not see one per miss.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Hashable, Iterable
from typing import Any

import attrs
from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
from opentelemetry.trace import TracerProvider

from ._core.errors import safe_repr
from ._core.hooks import SPANS
from ._core.metrics import Metric, metrics_of, one_hot_value, stats_class_of
from ._core.registry import KINDS, Registry, registry_or_default

__all__ = ["Instrumentation", "instrument"]


def instrument(
    registry: Registry | None = None,
    *,
    meter_provider: MeterProvider | None = None,
    tracer_provider: TracerProvider | None = None,
) -> Instrumentation:
    """Report ``registry``'s stats as metrics and its events as span events.

    Args:
        registry: The registry to report; ``hazina.registry`` if ``None``.
        meter_provider: Where the instruments are created; the global one if ``None``.
        tracer_provider: Accepted for symmetry with other instrumentations; hazina makes
            no spans of its own, it adds events to whichever span is current.

    Returns:
        A handle whose :meth:`~Instrumentation.uninstrument` stops both.
    """
    return Instrumentation(registry_or_default(registry), meter_provider, tracer_provider)


class Instrumentation:
    """What :func:`instrument` set up; :meth:`uninstrument` takes it down."""

    def __init__(
        self,
        registry: Registry,
        meter_provider: MeterProvider | None,
        tracer_provider: TracerProvider | None,
    ) -> None:
        self.registry = registry
        self._active = True
        self._lock = threading.Lock()
        # One stats() per collection, shared by every instrument's callback: a callback
        # that finds it has read the current snapshot already starts a new collection.
        self._snapshot: dict[str, dict[str, Any]] = {}
        self._readers: set[str] = set()
        provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
        meter = provider.get_meter("hazina")
        self._instruments = [
            self._create(meter, metric)
            for kind in KINDS
            for metric in metrics_of(kind, stats_class_of(Registry, kind) or object)
        ]
        self._unsubscribe = registry.subscribe(_add_span_event)
        _trace_loads(registry, add=True)

    def uninstrument(self) -> None:
        """Stop adding span events and reporting observations.

        OpenTelemetry cannot delete an instrument, so the instruments stay with the
        meter and observe nothing from now on.
        """
        with self._lock:
            if not self._active:
                return
            self._active = False
        self._unsubscribe()
        _trace_loads(self.registry, add=False)

    def _create(self, meter: metrics.Meter, metric: Metric) -> object:
        name = f"hazina.{metric.kind}.{metric.field}"
        callback = self._callback(metric, name)
        if metric.role == "counter":
            return meter.create_observable_counter(
                name, callbacks=[callback], description=metric.help
            )
        return meter.create_observable_gauge(name, callbacks=[callback], description=metric.help)

    def _callback(
        self, metric: Metric, instrument: str
    ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        kind, field = metric.kind, metric.field

        def observe(options: CallbackOptions) -> Iterable[Observation]:
            if not self._active:
                return []
            observations = []
            for name, stats in self._read(instrument).get(kind, {}).items():
                value = getattr(stats, field, None)
                if value is None:
                    continue
                if metric.role == "one_hot":
                    marked = one_hot_value(value)
                    observations += [
                        Observation(
                            1 if member == marked else 0,
                            {"hazina.name": name, f"hazina.{field}": member},
                        )
                        for member in metric.members
                    ]
                else:
                    observations.append(Observation(value, {"hazina.name": name}))
            return observations

        return observe

    def _read(self, instrument: str) -> dict[str, dict[str, Any]]:
        with self._lock:
            if instrument in self._readers or not self._readers:
                self._snapshot = self.registry.stats()
                self._readers = set()
            self._readers.add(instrument)
            return self._snapshot


def _add_span_event(event: object) -> None:
    span = trace.get_current_span()
    if not span.is_recording():
        return
    attributes: dict[str, Any] = {}
    event_class = type(event)
    if attrs.has(event_class):
        for field in attrs.fields(event_class):
            value = getattr(event, field.name)
            if value is None:
                continue
            key = "hazina.name" if field.name == "name" else f"hazina.{field.name}"
            attributes[key] = _attribute(value)
    span.add_event(f"hazina.{_snake(type(event).__name__)}", attributes)


#: The registries instrumented now (one entry per active instrumentation); a cache
#: load is marked on the span only when its cache is in one of them.
_traced: tuple[Registry, ...] = ()
_traced_lock = threading.Lock()
_logger = logging.getLogger("hazina.otel")


def _trace_loads(registry: Registry, *, add: bool) -> None:
    """Count ``registry`` in or out, and install the load hook only while any is in."""
    global _traced
    with _traced_lock:
        traced = list(_traced)
        if add:
            traced.append(registry)
        else:
            traced.remove(registry)
        _traced = tuple(traced)
        SPANS.cache_load = _add_load_event if traced else None


def _add_load_event(policy: object, key: Hashable) -> None:
    # Runs in the caller's load, before its loader: it must never raise.
    try:
        span = trace.get_current_span()
        if not span.is_recording():
            return
        name: str = getattr(policy, "name", "")
        for registry in _traced:
            try:
                if registry.get("cache", name) is policy:
                    break
            except KeyError:
                continue
        else:
            return  # a cache of a registry nobody instrumented
        span.add_event("hazina.cache_load", {"hazina.name": name, "hazina.key": _attribute(key)})
    except Exception:
        _logger.exception("hazina: could not add a cache load to the current span")


def _attribute(value: object) -> Any:
    return value if isinstance(value, str | bool | int | float) else safe_repr(value)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
