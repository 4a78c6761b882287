"""Write docs/api.md: one autodoc entry per public name, grouped as the package groups them.

Run after adding a public name (tests/test_docs.py fails until the page lists it)::

    python docs/_ext/make_api.py
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

MODULES = (
    "hazina",
    "hazina.testing",
    "hazina.health",
    "hazina.redis",
    "hazina.httpx",
    "hazina.asgi",
    "hazina.wsgi",
    "hazina.config",
    "hazina.prometheus",
    "hazina.otel",
)
#: Groups of the top-level package, in page order: a name goes to the first that claims it.
GROUPS = (
    ("Deadlines", lambda name, obj: name == "remaining"),
    ("Decorators", lambda name, obj: inspect.isfunction(obj) and name[0].islower()),
    ("Registry", lambda name, obj: name in {"Registry", "registry"}),
    ("Errors", lambda name, obj: isinstance(obj, type) and issubclass(obj, BaseException)),
    ("Configuration", lambda name, obj: name.endswith("Config") or name == "Limit"),
    ("Stats and readings", lambda name, obj: name.endswith(("Stats", "Status", "State"))),
    ("Events", lambda name, obj: name.endswith(("ed", "Rejected", "GaveUp", "TimedOut"))),
    ("Policies", lambda name, obj: True),
)
PAGE = Path(__file__).resolve().parent.parent / "api.md"


def entry(module: str, name: str, obj: object) -> str:
    if isinstance(obj, type):
        directive = "autoclass"
    elif inspect.isfunction(obj):
        directive = "autofunction"
    else:
        directive = "autodata"
    return f"```{{{directive}}} {module}.{name}\n```\n"


def page() -> str:
    lines = [
        "# API reference\n",
        "Everything public is importable from `hazina`, `hazina.testing`, `hazina.health`,",
        "`hazina.redis`, `hazina.config`, `hazina.httpx`, `hazina.asgi` and `hazina.wsgi`",
        "(with the extras: `hazina.prometheus`, `hazina.otel`); nothing else is part of",
        "the API.\n",
    ]
    package = importlib.import_module("hazina")
    placed: set[str] = set()
    for title, claims in GROUPS:
        names = [
            name
            for name in sorted(package.__all__, key=str.lower)
            if name not in placed and claims(name, getattr(package, name))
        ]
        if not names:
            continue
        placed.update(names)
        lines.append(f"## {title}\n")
        lines += [entry("hazina", name, getattr(package, name)) for name in names]
    for module_name in MODULES[1:]:
        module = importlib.import_module(module_name)
        lines.append(f"## `{module_name}`\n")
        lines += [entry(module_name, name, getattr(module, name)) for name in module.__all__]
    return "\n".join(lines)


if __name__ == "__main__":
    PAGE.write_text(page())
