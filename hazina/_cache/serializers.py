"""How a shared cache turns values into bytes and back: strict JSON, pickle by name, or yours."""

from __future__ import annotations

import json
import math
import pickle
from typing import Any, Literal, NoReturn, Protocol, TypeAlias, cast, runtime_checkable

import attrs

from .._core.validation import InvalidValue


@runtime_checkable
class SerializerProtocol(Protocol):
    """Anything with ``dumps(value) -> bytes`` and ``loads(bytes) -> value``."""

    def dumps(self, value: Any, /) -> bytes: ...

    def loads(self, data: bytes, /) -> Any: ...


#: ``serializer=`` of a cache: ``"json"`` (strict, the default), ``"pickle"`` (only by
#: name: anyone who can write to Redis could run code in every client), or an object.
Serializer: TypeAlias = Literal["json", "pickle"] | SerializerProtocol


def valid_serializer(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """``"json"``, ``"pickle"``, or an object with ``dumps`` and ``loads``."""
    if value in ("json", "pickle") or isinstance(value, SerializerProtocol):
        return
    raise InvalidValue(
        attribute.name, value, "'json', 'pickle' or an object with dumps() and loads()"
    )


_EXACT_SCALARS = (str, int, bool, type(None))


class StrictJson:
    """JSON that refuses every value that would not load back equal and of the same types.

    Plain ``json.dumps`` turns tuples into lists, non-``str`` dict keys into strings,
    enums into their values and NaN into a token ``json.loads`` reads back unequal: a
    cached call would then return something other than what the function returned, the
    second time only. Refusing at ``dumps`` makes the mistake show on the first call.
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        #: The cache the refusals name.
        self.name = name

    def dumps(self, value: Any, /) -> bytes:
        try:
            self._check(value, "value")
        except RecursionError:
            raise TypeError(
                f"cache {self.name!r}: the value is nested too deeply (or contains itself) "
                f"to be stored as JSON"
            ) from None
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: only its \\u escape round-trips
            return json.dumps(value, allow_nan=False, separators=(",", ":")).encode("ascii")

    def loads(self, data: bytes, /) -> Any:
        return json.loads(data)

    def _check(self, value: object, where: str) -> None:
        kind = type(value)
        if kind in _EXACT_SCALARS:
            return
        if kind is float:
            if not math.isfinite(cast(float, value)):
                self._refuse(where, value, "NaN and infinities are not JSON")
            return
        if kind is list:
            for index, item in enumerate(cast(list[object], value)):
                self._check(item, f"{where}[{index}]")
            return
        if kind is dict:
            for key, item in cast(dict[object, object], value).items():
                if type(key) is not str:
                    self._refuse(f"a key of {where}", key, "JSON object keys load back as str")
                self._check(item, f"{where}[{key!r}]")
            return
        reason = (
            "a subclass loads back as its base type"
            if isinstance(value, str | int | float | list | dict)
            else "JSON has no such type"
        )
        self._refuse(where, value, reason)

    def _refuse(self, where: str, value: object, reason: str) -> NoReturn:
        raise TypeError(
            f"cache {self.name!r}: {where} ({value!r:.80}, of type {type(value).__qualname__}) "
            f"would not load back equal from JSON ({reason}); store str, int, float, bool, "
            f"None, lists and dicts with str keys, or choose serializer='pickle' or your own"
        )


class Pickle:
    """Pickle, only when asked for by name: loading runs code chosen by whoever wrote it."""

    __slots__ = ()

    def dumps(self, value: Any, /) -> bytes:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)

    def loads(self, data: bytes, /) -> Any:
        return pickle.loads(data)  # chosen by name: see the class docstring


def serializer_for(choice: Serializer, name: str) -> SerializerProtocol:
    """The object behind ``serializer=`` for the cache ``name``."""
    if choice == "json":
        return StrictJson(name)
    if choice == "pickle":
        return Pickle()
    return choice


def serializer_name(choice: Serializer) -> str:
    """A name for ``choice`` that every process spells alike (for the shared configuration)."""
    if isinstance(choice, str):
        return choice
    kind = type(choice)
    return f"{kind.__module__}.{kind.__qualname__}"
