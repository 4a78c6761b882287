"""Rare events, logged: each kind's events on its own ``hazina.<kind>`` logger.

Every event a policy emits passes through its kind's :func:`event_log` after the
registry's listeners. The level is the event's own say (a ``log_level()`` method on its
record, e.g. WARNING for a breaker that opens) or DEBUG, the level of per-call events
(rejections, waits, evictions) and of any event whose kind has not said otherwise. The
record is formatted, and its ``extra`` built, only when the logger is enabled for that
level, so an open breaker refusing every call pays one dict lookup and one
``isEnabledFor`` (itself cached by :mod:`logging`) per refusal.

``extra`` carries ``hazina_kind``, ``hazina_name`` and each other field of the event as
``hazina_<field>``, which formatters that print ``extra`` (structlog's
``ProcessorFormatter`` with ``ExtraAdder``, python-json-logger) show as key-value pairs.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from typing import Any

import attrs

DEBUG = logging.DEBUG


def event_log(kind: str | None) -> Callable[[object], None]:
    """The function that logs ``kind``'s events on ``hazina.<kind>``."""
    logger = logging.getLogger("hazina" if kind is None else f"hazina.{kind}")
    enabled = logger.isEnabledFor
    # Per event class: its fixed level, or its log_level method.
    levels: dict[type, Any] = {}

    def log(event: object) -> None:
        rule = levels.get(event.__class__)
        if rule is None:
            rule = levels[event.__class__] = getattr(event.__class__, "log_level", DEBUG)
        level: int = rule if rule.__class__ is int else rule(event)
        if enabled(level):
            _write(logger, kind, level, event)

    return log


def _write(logger: logging.Logger, kind: str | None, level: int, event: object) -> None:
    event_class = type(event)
    fields = attrs.fields(event_class) if attrs.has(event_class) else ()
    values = {
        field.name: _plain(getattr(event, field.name))
        for field in fields
        if field.name not in ("name", "kind")
    }
    name = getattr(event, "name", None)
    extra: dict[str, Any] = {"hazina_kind": kind, "hazina_name": name}
    extra.update({f"hazina_{field}": value for field, value in values.items()})
    logger.log(
        level,
        "hazina: %s %r: %s %s",
        kind or "policy",
        name,
        event_class.__name__,
        " ".join(f"{field}={value!r}" for field, value in values.items()),
        extra=extra,
    )


def _plain(value: object) -> object:
    # A str enum as its value, so that key-value output reads state='open'.
    return value.value if isinstance(value, enum.Enum) else value
