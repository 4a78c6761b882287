"""Sphinx directives of hazina's docs: tables generated from the code, so they cannot drift.

``hazina-defaults`` renders one policy kind's parameters, defaults and meanings::

    ```{hazina-defaults} hazina.CircuitBreakerConfig
    :doc: hazina.circuit_breaker
    ```

The defaults come from the attrs configuration class (a derived default is shown as
derived, with its value when the parameters it derives from keep their defaults); the
meanings from the ``Args:`` section of the decorator's docstring. A parameter the
docstring does not describe is a build error, so a new parameter cannot go undocumented.
"""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any

import attrs
from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective


def _import(dotted: str) -> Any:
    """The object at ``dotted``: a module's attribute, or an attribute of one
    (``hazina.Registry.retry_budget``)."""
    parts = dotted.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            found = getattr(found, attribute)
        return found
    raise ImportError(f"nothing to import in {dotted!r}")


def args_of(docstring: str) -> dict[str, str]:
    """The ``Args:`` section of a Google-style docstring, as ``{param: description}``."""
    lines = inspect.cleandoc(docstring).splitlines()
    described: dict[str, str] = {}
    inside, current = False, ""
    for line in lines:
        if line.strip() == "Args:":
            inside = True
            continue
        if inside and line and not line.startswith(" "):
            break
        if not inside or not line.strip():
            continue
        match = re.match(r"^    (\w+)(?: \(.*?\))?: (.*)$", line)
        if match:
            current = match.group(1)
            described[current] = match.group(2).strip()
        elif current:
            described[current] += " " + line.strip()
    return described


def _shown(value: Any) -> str:
    if isinstance(value, type):
        return f"`{value.__name__}`"
    if isinstance(value, tuple) and all(isinstance(item, type) for item in value):
        return "`(" + ", ".join(item.__name__ for item in value) + ")`"
    return f"`{value!r}`"


def defaults_table(config_class: type[Any], decorator: Any) -> str:
    """A Markdown table: every configuration parameter, its default, and its meaning."""
    meanings = args_of(decorator.__doc__ or "")
    rows = ["| parameter | default | meaning |", "| --- | --- | --- |"]
    for field in attrs.fields(config_class):
        meaning = meanings.get(field.name)
        if meaning is None:
            raise ValueError(
                f"{decorator.__qualname__} does not describe its parameter {field.name!r} "
                "in its docstring's Args: section"
            )
        if isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
            default = "derived (see meaning)"
        elif field.default is attrs.NOTHING:
            default = "required"
        else:
            default = _shown(field.default)
        escaped = meaning.replace("|", r"\|")
        rows.append(f"| `{field.name}` | {default} | {escaped} |")
    return "\n".join(rows)


class DefaultsTable(SphinxDirective):
    """``{hazina-defaults} <config class>`` with ``:doc: <decorator>``."""

    required_arguments = 1
    option_spec = {"doc": directives.unchanged_required}  # noqa: RUF012 - docutils API

    def run(self) -> list[nodes.Node]:
        table = defaults_table(_import(self.arguments[0]), _import(self.options["doc"]))
        container = nodes.container()
        self.state.nested_parse(table.splitlines(), self.content_offset, container)
        return container.children


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("hazina-defaults", DefaultsTable)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
