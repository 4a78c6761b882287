"""Turn a pytest-benchmark JSON file into the README's Markdown table.

Usage::

    python -m pytest benchmarks --benchmark-only --benchmark-json=bench.json
    python benchmarks/table.py bench.json

Times are medians per call in nanoseconds (async groups are divided by the 1000 calls
per round). "vs fastest peer" compares hazina's row with the fastest peer library's in
the same group and run; the bare call, the functools pass-through and the wrapt
variants are references, not peers.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

PEERS = {
    "pybreaker",
    "circuitbreaker",
    "tenacity",
    "stamina",
    "backoff",
    "cachetools",
    "cachetools_lock",
    "cachetools_condition",
    "cashews",
    "cashews_lock",
    "aiocache",
    "aiocache_stampede",
    "limits_moving_window",
    "limits_fixed_window",
    "pyrate_limiter",
    "ratelimit",
    "ratelimit_sleep_and_retry",
    "aiolimiter",
    "try_except",
    "pyresilience",
    "hyx",
    "asyncio_wait",
    "futures_wait",
    "semaphore",
    "futures",
    "asyncio",
    "wrapt_timeout_decorator_signals",
    "wrapt_timeout_decorator_process",
}


def rows_by_group(data: dict[str, object]) -> dict[str, dict[str, float]]:
    """``{group: {row: median ns per call}}`` from pytest-benchmark's JSON."""
    groups: dict[str, dict[str, float]] = {}
    for bench in data["benchmarks"]:  # type: ignore[attr-defined]
        group = bench["group"]
        per_round = 1000 if "per 1000 calls" in group else 1
        row = re.sub(r"^test_(sync|async|method)_", "", bench["name"])
        groups.setdefault(group.replace(" (per 1000 calls)", ""), {})[row] = (
            bench["stats"]["median"] * 1e9 / per_round
        )
    return groups


def markdown(groups: dict[str, dict[str, float]]) -> str:
    """One table: group, row, median ns per call, hazina's ratio to the fastest peer."""
    lines = ["| group | row | median per call | vs fastest peer |", "| --- | --- | ---: | ---: |"]
    for group in sorted(groups):
        rows = groups[group]
        peers = [rows[name] for name in rows if name in PEERS]
        fastest_peer = min(peers) if peers else None
        for name, ns in sorted(rows.items(), key=lambda item: item[1]):
            ratio = ""
            if name.startswith("hazina") and name != "hazina_core" and fastest_peer is not None:
                ratio = f"{ns / fastest_peer:.2f}x"
            label = f"**{name}**" if name.startswith("hazina") else name
            lines.append(f"| {group} | {label} | {ns:,.0f} ns | {ratio} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(rows_by_group(json.loads(Path(sys.argv[1]).read_text()))))
