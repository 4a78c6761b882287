"""Prometheus metrics for every hazina policy, read from the registry at scrape time.

Install the extra (``pip install 'hazina[prometheus]'``) and register the collector::

    import prometheus_client
    from hazina.prometheus import HazinaCollector

    prometheus_client.REGISTRY.register(HazinaCollector())

or, faster, serve :func:`exposition` (the same text, written by hazina itself) beside
``prometheus_client.generate_latest()``.

Each stats field of each kind becomes ``hazina_<kind>_<field>`` with a ``name`` label:
counters end in ``_total``, levels (rates, sizes, ``retry_after``) are gauges, and a
breaker's ``state`` (a check's ``status``) is a one-hot gauge with a ``state``
(``status``) label. Nothing runs on the decorated calls' path: the collector reads
``registry.stats()`` when Prometheus scrapes.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Iterable, Iterator
from itertools import chain, repeat
from operator import attrgetter
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from ._core.metrics import Metric as Field
from ._core.metrics import metrics_of
from ._core.registry import Registry, registry_or_default

__all__ = ["HazinaCollector", "exposition"]


class HazinaCollector:
    """A Prometheus collector over a hazina registry's stats.

    Args:
        registry: The registry to read; ``hazina.registry`` (as it is at each scrape) if
            ``None``.
    """

    def __init__(self, registry: Registry | None = None) -> None:
        self._registry = registry
        self._scrapes = _Scrapes()

    def describe(self) -> Iterable[Metric]:
        # Policies come and go after registration: no fixed list of names to announce,
        # and no scrape at registration time.
        return ()

    def collect(self) -> Iterator[Metric]:
        """One family per stats field of every kind that has policies."""
        for shape, snapshots in self._scrapes.read(registry_or_default(self._registry)):
            yield from shape.families(snapshots)


def exposition(registry: Registry | None = None) -> bytes:
    """Every policy's metrics in Prometheus's text format (0.0.4), about five times as
    fast as ``generate_latest`` over a :class:`HazinaCollector`, and byte for byte what
    it returns for a ``CollectorRegistry`` holding only that collector.

    Serve it after ``prometheus_client.generate_latest()`` of your other metrics (with
    no ``HazinaCollector`` registered there, or each sample would appear twice).

    Args:
        registry: The registry to read; ``hazina.registry`` (as it is at the call) if
            ``None``.
    """
    registry = registry_or_default(registry)
    scrapes = _text_scrapes.get(registry)
    if scrapes is None:
        scrapes = _text_scrapes.setdefault(registry, _Scrapes())
    parts = [text for shape, snapshots in scrapes.read(registry) for text in shape.text(snapshots)]
    return "".join(parts).encode()


class _Scrapes:
    """What the scrapes of one registry keep from one to the next."""

    def __init__(self) -> None:
        # What a scrape builds that depends only on the policies' names: their labels,
        # one-hot samples and text lines, per kind and stats class. Replaced whole at
        # the end of each scrape, so concurrent scrapes never see one half built.
        self.shapes: dict[tuple[str, type], _Shape] = {}

    def read(self, registry: Registry) -> Iterator[tuple[_Shape, list[Any]]]:
        """Each stats class's shape with its policies' snapshots, in registry order."""
        known, seen = self.shapes, {}
        for kind, by_name in registry.stats().items():
            for stats_class, names, snapshots in _by_class(by_name):
                key = (kind, stats_class)
                shape = known.get(key)
                if shape is None or shape.names != names:
                    shape = _Shape(metrics_of(kind, stats_class), names)
                seen[key] = shape
                yield shape, snapshots
        self.shapes = seen


#: exposition()'s shapes of each registry it has read; they hold no reference to the
#: registry, so they go with it.
_text_scrapes: weakref.WeakKeyDictionary[Registry, _Scrapes] = weakref.WeakKeyDictionary()


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


# Samples are made as tuples of Sample's fields by C loops (zip, map, tuple.__new__), and
# text lines by C joins of cached prefixes: a scrape of 1,000 policies has about ten
# thousand samples, and Sample's own constructor (a Python function filling in the
# defaults) or a Python loop per sample would be most of hazina's share of the scrape.
_PADDING = len(Sample._fields) - 3
_new = tuple.__new__
#: How prometheus_client writes a sample's value.
_go_string: Callable[[float], str] = floatToGoString

_Made = TypeVar("_Made")


class _Shape:
    """The parts of a scrape of one stats class that depend only on its policies' names."""

    def __init__(self, metrics: tuple[Field, ...], names: tuple[str, ...]) -> None:
        self.names = names
        self.values = _getter(tuple(metric.field for metric in metrics))
        self.labels = tuple({"name": name} for name in names)
        self.metrics = [_Family(metric, self.labels) for metric in metrics]

    def families(self, snapshots: list[Any]) -> Iterator[Metric]:
        """This scrape's families, one per metric that has a sample."""
        for family, column in self._columns(snapshots):
            if family.tables is None:
                labels, values = _present(self.labels, column)
                rows = zip(
                    repeat(family.sample_name),
                    labels,
                    map(float, values),
                    *[repeat(None)] * _PADDING,
                )
                samples: list[Sample] = list(map(_new, repeat(Sample), rows))
            else:
                found = _per_value(family.tables, column, family.one_hot, ())
                samples = list(chain.from_iterable(found))
            if samples:
                metric = family.kind(family.name, family.help)
                metric.samples = samples
                yield metric

    def text(self, snapshots: list[Any]) -> Iterator[str]:
        """This scrape's lines, as ``generate_latest`` writes :meth:`families`."""
        for family, column in self._columns(snapshots):
            if family.tables is None:
                prefixes, values = _present(family.prefixes(), column)
                body = "".join(chain.from_iterable(zip(prefixes, _go(values), repeat("\n"))))
            else:
                body = "".join(_per_value(family.texts(), column, family.one_hot_text, ""))
            if body:
                yield family.header()
                yield body

    def _columns(self, snapshots: list[Any]) -> Iterator[tuple[_Family, tuple[Any, ...]]]:
        columns = zip(*map(self.values, snapshots), strict=True)
        return zip(self.metrics, columns, strict=True)


class _Family:
    """How one stats field becomes a metric family, as samples and as text."""

    def __init__(self, metric: Field, labels: tuple[dict[str, str], ...]) -> None:
        self.name = f"hazina_{metric.kind}_{metric.field}"
        self.help = metric.help
        self.field = metric.field
        self.members = metric.members
        self.labels = labels
        self.kind: Callable[[str, str], Metric]
        if metric.role == "counter":
            self.kind, self.sample_name = CounterMetricFamily, f"{self.name}_total"
        else:
            self.kind, self.sample_name = GaugeMetricFamily, self.name
        #: For a one-hot gauge, one table per policy: its samples for each value seen.
        self.tables: tuple[dict[Any, tuple[Sample, ...]], ...] | None = (
            tuple({} for _ in labels) if metric.members else None
        )
        # The text parts, made at the first exposition() (a collector alone never needs
        # them); a race makes them twice, identical.
        self._header: str | None = None
        self._prefixes: tuple[str, ...] | None = None
        self._texts: tuple[dict[Any, str], ...] | None = None

    def one_hot(self, index: int, value: Any) -> tuple[Sample, ...]:
        """The samples of policy ``index`` whose field reads ``value``."""
        return tuple(
            Sample(self.sample_name, labels, mark)
            for labels, mark in zip(self._member_labels(index), self._marks(value), strict=True)
        )

    def one_hot_text(self, index: int, value: Any) -> str:
        """:meth:`one_hot`'s samples as text lines."""
        lines = zip(self._member_labels(index), self._marks(value), strict=True)
        return "".join(
            f"{_prefix(self.sample_name, labels)}{_go_string(mark)}\n" for labels, mark in lines
        )

    def header(self) -> str:
        """The ``# HELP`` and ``# TYPE`` lines, from prometheus_client itself."""
        if self._header is None:
            collectors = CollectorRegistry(auto_describe=False)
            collectors.register(_Families([self.kind(self.name, self.help)]))
            self._header = generate_latest(collectors).decode()
        return self._header

    def prefixes(self) -> tuple[str, ...]:
        """Each policy's line up to its value."""
        if self._prefixes is None:
            self._prefixes = tuple(_prefix(self.sample_name, labels) for labels in self.labels)
        return self._prefixes

    def texts(self) -> tuple[dict[Any, str], ...]:
        """For a one-hot gauge, one table per policy: its lines for each value seen."""
        if self._texts is None:
            self._texts = tuple({} for _ in self.labels)
        return self._texts

    def _member_labels(self, index: int) -> Iterator[dict[str, str]]:
        name = self.labels[index]["name"]
        return ({"name": name, self.field: member} for member in self.members)

    def _marks(self, value: Any) -> Iterator[float]:
        current = getattr(value, "value", value)
        return (float(member == current) for member in self.members)


class _Families:
    """A collector handing out families made beforehand."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


def _present(
    keys: tuple[_Made, ...], column: tuple[Any, ...]
) -> tuple[Iterable[_Made], Iterable[Any]]:
    """``keys`` and ``column`` without the policies whose value is ``None``."""
    if None not in column:  # a rate below its minimum, a retry_after while closed
        return keys, column
    kept = [(key, value) for key, value in zip(keys, column, strict=True) if value is not None]
    return (key for key, _ in kept), (value for _, value in kept)


def _per_value(
    tables: tuple[dict[Any, _Made], ...],
    column: tuple[Any, ...],
    make: Callable[[int, Any], _Made],
    nothing: _Made,
) -> list[_Made]:
    """Each policy's rendering of its value in ``column``: a policy's one-hot samples
    depend only on its name and its current value, so each (policy, value) pair is made
    once and reused by every later scrape. ``None`` (a check that has not run yet)
    renders as nothing."""
    found: list[_Made | None] = list(map(dict.get, tables, column))
    if None in found:
        for index, value in enumerate(column):
            if found[index] is None:
                if value is None:
                    found[index] = nothing
                else:
                    found[index] = tables[index].setdefault(value, make(index, value))
    return found  # type: ignore[return-value]


def _prefix(sample_name: str, labels: dict[str, str]) -> str:
    """A sample's line up to its value, as prometheus_client's text format writes it:
    labels sorted by name, backslash, newline and double quote escaped in values."""
    pairs = ",".join(
        '{}="{}"'.format(key, value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\""))
        for key, value in sorted(labels.items())
    )
    return f"{sample_name}{{{pairs}}} "


def _go(values: Iterable[Any]) -> list[str]:
    """``floatToGoString`` of each value, by ``repr`` (a C loop) where the two agree:
    every finite float below 1e6."""
    floats = list(map(float, values))
    strings = list(map(repr, floats))
    # A finite sum means no inf or NaN (an overflow only sends a column the slow way).
    if floats and not (math.isfinite(sum(floats)) and max(floats) < 1e6):
        strings = [
            text if -math.inf < number < 1e6 else _go_string(number)
            for number, text in zip(floats, strings, strict=True)
        ]
    return strings


def _getter(fields: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """All of ``fields`` of an object in one C call, always as a tuple."""
    if len(fields) > 1:
        return attrgetter(*fields)
    if fields:
        one = attrgetter(fields[0])
        return lambda stats: (one(stats),)
    return lambda stats: ()
