"""Giving a decorated function a new driver in place, when its policy is reconfigured.

A decorated plain function *is* its driver: a closure built at decoration time that
holds, in its cells, everything the hot path needs. Reading the configuration through
the policy on every call would cost an attribute read (or a lock) per value per call,
so a reconfigure rebuilds the driver instead and moves the new one into the old
function object, which callers and classes already hold:

1. the function's keyword defaults get the new driver (invisible to the old code,
   which has no keyword-only parameter), then its ``__code__`` becomes a forwarder
   that calls it: one store, so every call that starts now runs the new driver whole;
2. when the new driver was made from the same code (same variant of driver), its cell
   values are copied into the old function's cells and its code put back: from then
   on the function is a direct driver again, with no extra frame. A call already in
   flight when the swap happens may read later values from the new configuration.
   When the variant changed (a breaker given a slow-call rule, say), the forwarder
   stays: one extra frame per call for functions decorated before that reconfigure.
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
    exec(compile(source, "<hazina driver swap>", "exec"), namespace)  # noqa: S102
    outer = namespace["outer"]
    inner = outer(*range(cells))
    return inner.__code__  # type: ignore[no-any-return]


def swap_driver(
    decorated: Callable[..., Any], native: types.CodeType, new: Callable[..., Any], is_async: bool
) -> None:
    """Make ``decorated`` run ``new`` from its next call on.

    ``native`` is the code ``decorated``'s cells were laid out for when it was built.
    """
    function: Any = decorated
    cells = function.__closure__ or ()
    function.__kwdefaults__ = {_NEXT: new}
    function.__code__ = _forwarder(len(cells), is_async)
    if new.__code__ is native and new.__closure__ is not None:
        for cell, value in zip(cells, new.__closure__, strict=True):
            cell.cell_contents = value.cell_contents
        function.__code__ = native
        function.__kwdefaults__ = None
