"""Prometheus metrics for every hazina policy, read from the registry at scrape time.

Install the extra (``pip install 'hazina[prometheus]'``) and register the collector::

    import prometheus_client
    from hazina.prometheus import HazinaCollector

    prometheus_client.REGISTRY.register(HazinaCollector())

Each stats field of each kind becomes ``hazina_<kind>_<field>`` with a ``name`` label:
counters end in ``_total``, levels (rates, sizes, ``retry_after``) are gauges, and a
breaker's ``state`` (a check's ``status``) is a one-hot gauge with a ``state``
(``status``) label. Nothing runs on the decorated calls' path: the collector reads
``registry.stats()`` when Prometheus scrapes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from operator import attrgetter
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.samples import Sample

from ._core.metrics import Metric as Field
from ._core.metrics import metrics_of
from ._core.registry import Registry, registry_or_default

__all__ = ["HazinaCollector"]


class HazinaCollector:
    """A Prometheus collector over a hazina registry's stats.

    Args:
        registry: The registry to read; ``hazina.registry`` (as it is at each scrape) if
            ``None``.
    """

    def __init__(self, registry: Registry | None = None) -> None:
        self._registry = registry

    def describe(self) -> Iterable[Metric]:
        # Policies come and go after registration: no fixed list of names to announce,
        # and no scrape at registration time.
        return ()

    def collect(self) -> Iterator[Metric]:
        """One family per stats field of every kind that has policies."""
        registry = registry_or_default(self._registry)
        new, sample, pad = tuple.__new__, Sample, _PAD
        for kind, by_name in registry.stats().items():
            by_class: dict[type, list[tuple[str, Any]]] = {}
            for name, stats in by_name.items():
                by_class.setdefault(stats.__class__, []).append((name, stats))
            for stats_class, policies in by_class.items():
                plan = _Plan(metrics_of(kind, stats_class))
                names = [name for name, _ in policies]
                labels = [{"name": name} for name in names]
                # One column of values per field, transposed in C; each family's samples
                # are then one comprehension over its column.
                columns = zip(*[plan.values(stats) for _, stats in policies], strict=True)
                for (field, members, samples, sample_name), column in zip(
                    plan.fields, columns, strict=False
                ):
                    if members:
                        samples[:] = [
                            new(
                                sample,
                                (
                                    sample_name,
                                    {"name": name, field: member},
                                    1.0 if member == getattr(value, "value", value) else 0.0,
                                    *pad,
                                ),
                            )
                            for name, value in zip(names, column, strict=True)
                            if value is not None
                            for member in members
                        ]
                    else:
                        samples[:] = [
                            new(sample, (sample_name, label, float(value), *pad))
                            for label, value in zip(labels, column, strict=True)
                            if value is not None
                        ]
                yield from (family for family in plan.families if family.samples)


# Samples are built as plain tuples of Sample's fields: a scrape of 1,000 policies makes
# about ten thousand, and Sample's own constructor (a Python function filling in the
# defaults) would be about half of the scrape's time.
_PAD = (None,) * (len(Sample._fields) - 3)


class _Plan:
    """One scrape's families for one stats class, and how to fill them."""

    def __init__(self, metrics: tuple[Field, ...]) -> None:
        self.values = _getter(tuple(metric.field for metric in metrics))
        self.families: list[Metric] = []
        #: field, one-hot members (empty for a plain value), samples, the samples' name
        self.fields: list[tuple[str, tuple[str, ...], list[Sample], str]] = []
        for metric in metrics:
            name = f"hazina_{metric.kind}_{metric.field}"
            family: Metric
            if metric.role == "counter":
                family = CounterMetricFamily(name, metric.help)
                sample_name = f"{name}_total"
            else:
                family = GaugeMetricFamily(name, metric.help)
                sample_name = name
            self.families.append(family)
            self.fields.append((metric.field, metric.members, family.samples, sample_name))


def _getter(fields: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """All of ``fields`` of an object in one C call, always as a tuple."""
    if len(fields) > 1:
        return attrgetter(*fields)
    if fields:
        one = attrgetter(fields[0])
        return lambda stats: (one(stats),)
    return lambda stats: ()
