"""Rare events, logged: each kind's events on its own ``hazina.<kind>`` logger.

Every event a policy emits goes through its kind's :func:`event_emitter`: to the
registry's listeners, then to the kind's logger. The level is the event's own say (a
``log_level`` method or class attribute on its record, e.g. WARNING for a breaker that
opens) or DEBUG, the level of per-call events (rejections, waits, evictions) and of any
event whose kind has not said otherwise. The record is formatted, and its ``extra``
built, only when the logger is enabled for that level, so an open breaker refusing
every call pays a dict lookup and one ``isEnabledFor`` per refusal.

``extra`` carries ``hazina_kind``, ``hazina_name`` and each other field of the event as
``hazina_<field>``, which formatters that print ``extra`` (structlog's
``ProcessorFormatter`` with ``ExtraAdder``, python-json-logger) show as key-value pairs.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from typing import Any, Protocol

import attrs

DEBUG = logging.DEBUG


class Audience(Protocol):
    """Who hears a registry's events besides its loggers."""

    _listeners: tuple[Callable[[object], object], ...]

    def _emit(self, event: object) -> None: ...


def event_emitter(kind: str | None, audience: Audience) -> Callable[[object], None]:
    """The ``emit`` of ``kind``'s policies: to the listeners, then to ``hazina.<kind>``.

    One function: a per-call event nobody listens to costs a dict lookup and one
    ``isEnabledFor`` beyond the listeners check the registry always made.
    """
    logger = logging.getLogger("hazina" if kind is None else f"hazina.{kind}")
    # logging caches isEnabledFor's answer per level and empties that cache whenever a
    # level changes; a cache of our own measured ~15 ns cheaper per event and would
    # hide DEBUG records for a while after DEBUG is switched on.
    enabled, deliver = logger.isEnabledFor, audience._emit
    # Per event class: its fixed level, or its log_level method.
    levels: dict[type, Any] = {}

    def emit(event: object) -> None:
        if audience._listeners:
            deliver(event)
        try:
            rule = levels[event.__class__]
        except KeyError:
            rule = levels[event.__class__] = getattr(event.__class__, "log_level", DEBUG)
        level: int = rule if rule.__class__ is int else rule(event)
        if enabled(level):
            _write(logger, kind, level, event)

    return emit


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
