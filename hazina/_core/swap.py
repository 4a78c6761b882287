"""Giving a decorated function a new driver in place, when its policy is reconfigured.

A decorated plain function *is* its driver: a closure built at decoration time that
holds, in its cells, everything the hot path needs. Reading the configuration through
the policy on every call would cost an attribute read (or a lock) per value per call,
so a reconfigure rebuilds the driver instead, and:

- when the new driver is the same code holding the same values (most changes only
  matter on slow paths, which read the policy's configuration), nothing is swapped and
  the hot path is exactly what it was;
- otherwise the function's keyword defaults get the new driver (invisible to the old
  code, which has no keyword-only parameter), then its ``__code__`` becomes a forwarder
  that calls it: one store, so a call runs either the old driver whole or the new one
  whole, never a mix. The cost is one extra frame per call, for functions decorated
  before such a reconfigure; a reconfigure back to values matching the original
  driver puts its own code back.

Copying the new values into the old function's cells would save that frame, but a
call already running reads those cells as it goes and could see half of each.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from typing import Any

_NEXT = "_hazina_next_driver"


@functools.cache
def _forwarder(cells: int, is_async: bool) -> types.CodeType:
    """Code that calls its keyword default ``_NEXT``, laid out for ``cells`` closure cells."""
    names = [f"_unused_{i}" for i in range(cells)]
    held = ", ".join(names) + ("," if names else "")
    prefix, wait = ("async ", "await ") if is_async else ("", "")
    source = (
        f"def outer({', '.join(names)}):\n"
        f"    {prefix}def forward(*args, {_NEXT}, **kwargs):\n"
        # Never runs; it makes the cells free variables so the code fits the closure.
        f"        if False: ({held})\n"
        f"        return {wait}{_NEXT}(*args, **kwargs)\n"
        f"    return forward\n"
    )
    namespace: dict[str, Any] = {}
    exec(compile(source, "<hazina driver swap>", "exec"), namespace)
    outer = namespace["outer"]
    inner = outer(*range(cells))
    return inner.__code__  # type: ignore[no-any-return]


def _same(old: object, new: object) -> bool:
    if old is new:
        return True
    try:
        return type(old) is type(new) and bool(old == new)
    except Exception:  # a value whose == fails or is not a bool: treat as different
        return False


def _holds(function: Any, code: types.CodeType, new: Callable[..., Any]) -> bool:
    """Whether ``new`` is ``code`` run over the same values as ``function``'s cells."""
    if getattr(new, "__code__", None) is not code:
        return False
    mine, theirs = function.__closure__ or (), getattr(new, "__closure__", None) or ()
    return len(mine) == len(theirs) and all(
        _same(cell.cell_contents, other.cell_contents)
        for cell, other in zip(mine, theirs, strict=True)
    )


def swap_driver(
    decorated: Callable[..., Any], native: types.CodeType, new: Callable[..., Any], is_async: bool
) -> None:
    """Make ``decorated`` run ``new`` from its next call on.

    ``native`` is the code ``decorated``'s cells were laid out for when it was built.
    """
    function: Any = decorated
    if _holds(function, native, new):
        if function.__code__ is not native:
            function.__code__ = native  # back to the original driver, in one store
            function.__kwdefaults__ = None
        return
    cells = function.__closure__ or ()
    function.__kwdefaults__ = {_NEXT: new}
    function.__code__ = _forwarder(len(cells), is_async)
