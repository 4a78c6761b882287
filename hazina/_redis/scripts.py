"""Lua scripts shipped as package data, and the failure every Redis policy handles."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from importlib.resources import files
from typing import Any


class Script:
    """A Lua script shipped with hazina, known to Redis by its SHA-1."""

    __slots__ = ("name", "sha", "source")

    def __init__(self, package: str, name: str) -> None:
        self.name: str = name
        self.source: str = (files(package) / name).read_text()
        self.sha: str = hashlib.sha1(self.source.encode()).hexdigest()

    def command(self, keys: Sequence[str], args: Sequence[Any]) -> tuple[Any, ...]:
        """The ``EVALSHA`` command of one run of this script."""
        return ("EVALSHA", self.sha, len(keys), *keys, *args)


class Unreachable(Exception):
    """Internal: the backend gave no answer; ``attempted`` is False if none was asked for."""

    def __init__(self, retry_after: float, *, attempted: bool) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after
        self.attempted = attempted
