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
from itertools import chain, repeat
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
        # What a scrape builds that depends only on the policies' names: their labels
        # and one-hot samples, per kind and stats class. Replaced whole at the end of
        # each scrape, so concurrent scrapes never see one half built.
        self._shapes: dict[tuple[str, type], _Shape] = {}

    def describe(self) -> Iterable[Metric]:
        # Policies come and go after registration: no fixed list of names to announce,
        # and no scrape at registration time.
        return ()

    def collect(self) -> Iterator[Metric]:
        """One family per stats field of every kind that has policies."""
        registry = registry_or_default(self._registry)
        known, seen = self._shapes, {}
        for kind, by_name in registry.stats().items():
            for stats_class, names, snapshots in _by_class(by_name):
                key = (kind, stats_class)
                shape = known.get(key)
                if shape is None or shape.names != names:
                    shape = _Shape(metrics_of(kind, stats_class), names)
                seen[key] = shape
                yield from shape.families(snapshots)
        self._shapes = seen


def _by_class(by_name: dict[str, Any]) -> list[tuple[type, tuple[str, ...], list[Any]]]:
    """``by_name``'s snapshots grouped by class (almost always one), names in order."""
    snapshots = list(by_name.values())
    classes = set(map(type, snapshots))
    if len(classes) == 1:
        return [(classes.pop(), tuple(by_name), snapshots)]
    groups: dict[type, tuple[list[str], list[Any]]] = {}
    for name, stats in by_name.items():
        names, members = groups.setdefault(type(stats), ([], []))
        names.append(name)
        members.append(stats)
    return [(cls, tuple(names), members) for cls, (names, members) in groups.items()]


# Samples are made as tuples of Sample's fields by C loops (zip, map, tuple.__new__): a
# scrape of 1,000 policies hands prometheus_client about ten thousand, and Sample's own
# constructor (a Python function filling in the defaults) or a Python loop per sample
# would be most of hazina's share of the scrape.
_PADDING = len(Sample._fields) - 3
_new = tuple.__new__


class _Shape:
    """The parts of a scrape of one stats class that depend only on its policies' names."""

    def __init__(self, metrics: tuple[Field, ...], names: tuple[str, ...]) -> None:
        self.names = names
        self.values = _getter(tuple(metric.field for metric in metrics))
        self.labels = tuple({"name": name} for name in names)
        self.metrics = [_Family(metric, len(names)) for metric in metrics]

    def families(self, snapshots: list[Any]) -> Iterator[Metric]:
        """This scrape's families, one per metric that has a sample."""
        columns = zip(*map(self.values, snapshots), strict=True)
        for family, column in zip(self.metrics, columns, strict=True):
            if family.tables is None:
                samples = self._plain(family.sample_name, column)
            else:
                samples = self._one_hot(family, column)
            if samples:
                metric = family.kind(family.name, family.help)
                metric.samples = samples
                yield metric

    def _plain(self, sample_name: str, column: tuple[Any, ...]) -> list[Sample]:
        labels = self.labels
        if None in column:  # a rate below its minimum, a retry_after while closed
            kept = [
                (label, value)
                for label, value in zip(labels, column, strict=True)
                if value is not None
            ]
            labels = tuple(label for label, _ in kept)
            column = tuple(value for _, value in kept)
        rows = zip(repeat(sample_name), labels, map(float, column), *[repeat(None)] * _PADDING)
        return list(map(_new, repeat(Sample), rows))

    def _one_hot(self, family: _Family, column: tuple[Any, ...]) -> list[Sample]:
        # A policy's one-hot samples depend only on its name and its current value, so
        # each (policy, value) pair is built once and reused by every later scrape.
        tables = family.tables
        assert tables is not None
        found: list[tuple[Sample, ...] | None] = list(map(dict.get, tables, column))
        if None in found:
            for index, value in enumerate(column):
                if found[index] is not None:
                    continue
                if value is None:  # a check that has not run yet: no sample
                    found[index] = ()
                else:
                    made = family.one_hot(self.names[index], value)
                    found[index] = tables[index].setdefault(value, made)
        return list(chain.from_iterable(found))  # type: ignore[arg-type]


class _Family:
    """How one stats field becomes a metric family."""

    def __init__(self, metric: Field, policies: int) -> None:
        self.name = f"hazina_{metric.kind}_{metric.field}"
        self.help = metric.help
        self.field = metric.field
        self.members = metric.members
        self.kind: Callable[[str, str], Metric]
        if metric.role == "counter":
            self.kind, self.sample_name = CounterMetricFamily, f"{self.name}_total"
        else:
            self.kind, self.sample_name = GaugeMetricFamily, self.name
        #: For a one-hot gauge, one table per policy: its samples for each value seen.
        self.tables: tuple[dict[Any, tuple[Sample, ...]], ...] | None = (
            tuple({} for _ in range(policies)) if metric.members else None
        )

    def one_hot(self, name: str, value: Any) -> tuple[Sample, ...]:
        """The samples of policy ``name`` whose field reads ``value``."""
        current = getattr(value, "value", value)
        return tuple(
            Sample(self.sample_name, {"name": name, self.field: member}, float(member == current))
            for member in self.members
        )


def _getter(fields: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """All of ``fields`` of an object in one C call, always as a tuple."""
    if len(fields) > 1:
        return attrgetter(*fields)
    if fields:
        one = attrgetter(fields[0])
        return lambda stats: (one(stats),)
    return lambda stats: ()
