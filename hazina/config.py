"""Reading policy configuration from a TOML file or the environment.

Both return a mapping ``{kind: {name: {param: value}}}`` for
:meth:`hazina.Registry.configure`, which also remembers where each value came from so
that an error names the file or the variable::

    hazina.registry.configure(hazina.config.from_toml("hazina.toml"))
    hazina.registry.configure(hazina.config.from_env())
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._core.errors import ConfigurationError

__all__ = ["Configuration", "from_env", "from_toml"]


class Configuration(dict[str, dict[str, dict[str, Any]]]):
    """``{kind: {name: {param: value}}}``, plus where each entry came from.

    ``sources[(kind, name, param)]`` (``param`` ``""`` for a whole entry) is a prefix
    for error messages, such as ``"hazina.toml: "``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.sources: dict[tuple[str, str, str], str] = {}

    def add(self, kind: str, name: str, param: str, value: Any, source: str) -> None:
        """Set ``param`` of ``kind`` ``name`` to ``value``, read from ``source``."""
        param = param.casefold().replace("-", "_")
        self.setdefault(kind, {}).setdefault(name, {})[param] = value
        self.sources[(kind, name, param)] = f"{source}: "
        self.sources.setdefault((kind, name, ""), f"{source}: ")
        self.sources.setdefault((kind, "", ""), f"{source}: ")


def from_toml(path: str | os.PathLike[str]) -> Configuration:
    """Read ``[kind.name]`` tables of parameters from the TOML file at ``path``.

    ``ConfigurationError`` names the file for a file that does not parse or is not
    shaped ``kind.name.param = value``.
    """
    shown = os.fspath(path)
    try:
        with Path(path).open("rb") as file:
            data = tomllib.load(file)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigurationError(f"{shown}: cannot read hazina configuration: {error}") from None
    configuration = Configuration()
    for kind, by_name in data.items():
        _expect_table(by_name, f"{shown}: [{kind}]")
        for name, params in by_name.items():
            _expect_table(params, f"{shown}: [{kind}.{name}]")
            for param, value in params.items():
                configuration.add(kind, name, param, value, f"{shown} [{kind}.{name}] {param}")
    return configuration


def from_env(prefix: str = "HAZINA", environ: Mapping[str, str] | None = None) -> Configuration:
    """Read variables ``<prefix>__<KIND>__<NAME>__<PARAM>`` (``os.environ`` by default).

    Values are parsed as JSON where they parse (``5``, ``0.5``, ``true``, ``null``,
    ``["10/second"]``) and kept as strings otherwise. Kinds, names and parameters
    match case-insensitively, with ``-`` and ``_`` alike.
    """
    environ = os.environ if environ is None else environ
    start = f"{prefix}__".casefold()
    configuration = Configuration()
    for variable, raw in sorted(environ.items()):
        if not variable.casefold().startswith(start):
            continue
        parts = variable[len(start) :].split("__")
        if len(parts) != 3 or not all(parts):
            raise ConfigurationError(
                f"{variable}: expected {prefix}__<KIND>__<NAME>__<PARAM>, e.g. "
                f"{prefix}__CIRCUIT_BREAKER__PAYMENTS__OPEN_FOR=10"
            )
        kind, name, param = parts
        configuration.add(kind, name, param.casefold(), _parsed(raw), variable)
    return configuration


def _parsed(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _expect_table(value: object, where: str) -> None:
    if not isinstance(value, dict):
        raise ConfigurationError(
            f"{where}: expected a table of policies by name, then of parameters "
            f"(kind.name.param = value), got {value!r}"
        )
