"""Redis key names: a prefix, a Cluster hash tag per policy (or per policy and user key).

``{prefix}:{<kind>:<name>}:<suffix>`` holds policy-wide state and
``{prefix}:{<kind>:<name>:<digest>}:<suffix>`` per-key state. The braces make Redis
Cluster hash only what is inside them, so every decision touches one slot while a
policy with many keys spreads over the cluster. User keys are never written into a key
name: ``<digest>`` hashes their canonical encoding, so no argument can collide with
another, escape the prefix or break the hash tag.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Hashable

from .._core.errors import ConfigurationError


def check_key_part(what: str, value: str) -> None:
    """A prefix or policy name must not contain braces: they would move the hash tag."""
    if "{" in value or "}" in value:
        raise ConfigurationError(
            f"{what} {value!r} contains '{{' or '}}', which would break the Redis Cluster "
            f"hash tag of its keys; choose another"
        )


def encode(value: object) -> bytes:
    """The canonical bytes of a user key; equal keys of the same types, equal bytes.

    1, 1.0 and True stay apart (Python hashes them alike). Strings and bytes carry their
    length, so no concatenation of parts can be read two ways.

    Raises:
        TypeError: ``value`` is not str, bytes, int, float, bool, None or a tuple of them.
    """
    if value is None:
        return b"N"
    if type(value) is bool:
        return b"T" if value else b"F"
    if type(value) is int:
        return b"i%d;" % value
    if type(value) is float:
        return b"f" + struct.pack(">d", value)
    if type(value) is str:
        data = value.encode("utf-8", "surrogatepass")
        return b"s%d:" % len(data) + data
    if type(value) is bytes:
        return b"b%d:" % len(value) + value
    if type(value) is tuple:
        parts = [encode(item) for item in value]
        return b"t%d(" % len(parts) + b"".join(parts) + b")"
    raise TypeError(
        f"a key of type {type(value).__name__} cannot be shared through Redis; use str, bytes, "
        f"int, float, bool, None or a tuple of them"
    )


def digest(value: Hashable) -> str:
    """A short, collision-resistant name for a user key (a 128-bit BLAKE2b hash)."""
    return hashlib.blake2b(encode(value), digest_size=16).hexdigest()


class KeyNames:
    """The key names of one policy on one backend."""

    __slots__ = ("_per_key", "_policy")

    def __init__(self, prefix: str, kind: str, name: str) -> None:
        check_key_part("the Redis prefix", prefix)
        check_key_part(f"the {kind} name", name)
        self._policy = f"{prefix}:{{{kind}:{name}}}:"
        self._per_key = f"{prefix}:{{{kind}:{name}:"

    def policy(self, suffix: str) -> str:
        """A policy-wide key."""
        return self._policy + suffix

    def of(self, user_key: Hashable, suffix: str) -> str:
        """A per-key key; ``TypeError`` for a user key that cannot be encoded."""
        return f"{self._per_key}{digest(user_key)}}}:{suffix}"
