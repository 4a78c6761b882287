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

from collections.abc import Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from ._core.metrics import metrics_of, one_hot_value
from ._core.registry import Registry, registry_or_default

__all__ = ["HazinaCollector"]


class HazinaCollector(Collector):
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
        for kind, by_name in registry.stats().items():
            plans: dict[type, tuple[_Plan, ...]] = {}
            for name, stats in by_name.items():
                plan = plans.get(type(stats))
                if plan is None:
                    plan = plans[type(stats)] = _plan(kind, type(stats))
                labels = {"name": name}
                for field, one_hot, family, sample_name, members in plan:
                    value = getattr(stats, field)
                    if value is None:
                        continue
                    samples = family.samples
                    if one_hot:
                        marked = one_hot_value(value)
                        for member in members:
                            samples.append(
                                _sample(
                                    (
                                        sample_name,
                                        {"name": name, field: member},
                                        1.0 if member == marked else 0.0,
                                        *_PAD,
                                    )
                                )
                            )
                    else:
                        samples.append(_sample((sample_name, labels, float(value), *_PAD)))
            done: set[int] = set()
            for plan in plans.values():
                for _, _, family, _, _ in plan:
                    if family.samples and id(family) not in done:
                        done.add(id(family))
                        yield family


# Samples are built as tuples: a scrape of 1,000 policies makes about ten thousand, and
# Sample's keyword-default constructor would be half of the scrape's time.
_sample = Sample._make
_PAD = (None,) * (len(Sample._fields) - 3)

# field, one-hot?, the family its samples go to, the samples' name, one-hot members
_Plan = tuple[str, bool, Metric, str, tuple[str, ...]]


def _plan(kind: str, stats_class: type) -> tuple[_Plan, ...]:
    """This scrape's families for one stats class, one per exported field."""
    plan: list[_Plan] = []
    for field in metrics_of(kind, stats_class):
        name = f"hazina_{field.kind}_{field.field}"
        if field.role == "counter":
            plan.append(
                (field.field, False, CounterMetricFamily(name, field.help), f"{name}_total", ())
            )
        else:
            family = GaugeMetricFamily(name, field.help)
            plan.append((field.field, field.role == "one_hot", family, name, field.members))
    return tuple(plan)
