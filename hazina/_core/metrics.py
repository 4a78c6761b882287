"""Metrics derived from stats: the one rule every exporter (Prometheus, OpenTelemetry) follows.

A kind gets its metrics by having a stats class (the ``attrs`` class its policies'
``stats()`` returns, reached through the registry's factory ``Registry.<kind>``); each
field becomes one metric:

- a field named in :data:`GAUGES` is a gauge (a reading of now);
- a field whose type is an enum (a breaker's ``state``, a check's ``status``) is a
  one-hot gauge with a label named after the field, one sample per member;
- every other ``int`` or ``float`` field is a counter (cumulative since creation or
  ``reset()``);
- fields of other types are not exported, and a ``None`` value gives no sample.

So adding a kind is adding its stats class; a field that reads a level rather than a
count goes into :data:`GAUGES`.
"""

from __future__ import annotations

import enum
import functools
import sys
import types
import typing
from typing import Any, Literal

import attrs

#: Stats fields that read a level now rather than count since creation.
GAUGES = frozenset(
    {
        "state",
        "status",
        "failure_rate",
        "slow_call_rate",
        "retry_after",
        "hit_rate",
        "size",
        "tracked_keys",
        "open_keys",
        "active",
        "queued",
        "peak_active",
        "last_duration",
    }
)

Role = Literal["counter", "gauge", "one_hot"]


@attrs.frozen
class Metric:
    """How one stats field of one kind is exported."""

    kind: str
    field: str
    role: Role
    #: The label values of a one-hot gauge, in the enum's order.
    members: tuple[str, ...] = ()

    @property
    def help(self) -> str:
        """One line on what the metric is, for HELP and descriptions."""
        what = {
            "counter": "since creation or reset()",
            "gauge": "now",
            "one_hot": f"1 for the current {self.field}, 0 for the others",
        }[self.role]
        return f"hazina {self.kind} stats field {self.field!r}, {what}"


@functools.cache
def metrics_of(kind: str, stats_class: type) -> tuple[Metric, ...]:
    """The metrics of ``kind``'s stats class, one per exported field."""
    if not attrs.has(stats_class):
        return ()
    try:
        hints = typing.get_type_hints(stats_class)
    except Exception:  # an annotation that does not resolve at run time
        hints = {}
    found = []
    for field in attrs.fields(stats_class):
        declared = _without_none(hints.get(field.name, field.type))
        if isinstance(declared, type) and issubclass(declared, enum.Enum):
            members = tuple(str(member.value) for member in declared)
            found.append(Metric(kind, field.name, "one_hot", members))
        elif declared in (int, float) or _is_number_union(declared):
            role: Role = "gauge" if field.name in GAUGES else "counter"
            found.append(Metric(kind, field.name, role))
    return tuple(found)


def stats_class_of(registry_class: type, kind: str) -> type | None:
    """The stats class of ``kind``, read from the return types of ``Registry.<kind>``
    and of the policy class's ``stats``; ``None`` if either is missing."""
    policy_class = _return_type(getattr(registry_class, kind, None))
    if not isinstance(policy_class, type):
        return None
    stats_class = _return_type(getattr(policy_class, "stats", None))
    return stats_class if isinstance(stats_class, type) else None


def _return_type(function: Any) -> Any:
    annotation = getattr(function, "__annotations__", {}).get("return")
    if isinstance(annotation, str):
        # Only the return annotation is evaluated: the parameters' may name types
        # imported for type checkers alone.
        module = sys.modules.get(getattr(function, "__module__", ""), None)
        try:
            return eval(annotation, vars(module) if module else {})
        except Exception:
            return None
    return annotation


def _without_none(declared: Any) -> Any:
    if isinstance(declared, types.UnionType) or typing.get_origin(declared) is typing.Union:
        rest = [arg for arg in typing.get_args(declared) if arg is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return declared


def _is_number_union(declared: Any) -> bool:
    if isinstance(declared, types.UnionType) or typing.get_origin(declared) is typing.Union:
        return all(arg in (int, float) for arg in typing.get_args(declared))
    return False


def one_hot_value(value: object) -> str | None:
    """The label value a one-hot gauge marks with 1; ``None`` (no samples) for ``None``."""
    if value is None:
        return None
    return str(value.value) if isinstance(value, enum.Enum) else str(value)
