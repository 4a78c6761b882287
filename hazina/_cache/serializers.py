"""How a shared cache turns values into bytes and back: strict JSON, pickle by name, or yours."""

from __future__ import annotations

from typing import Any, Literal, Protocol, TypeAlias, runtime_checkable

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
