"""Rate limiters on one local Redis: hazina beside limits and pyrate-limiter, in one run.

Usage (from a checkout with ``pip install -e '.[bench]'`` and redis-server on PATH)::

    python benchmarks/redis_limiters.py [--rounds 5] [--decisions 2000] [--tasks 32]

It starts its own redis-server on a free loopback port (persistence off), then runs
every contender in interleaved rounds (round 1 of each, round 2 of each, ...) so that
machine noise falls on all of them alike. Every limit is far above what a single client
reaches, so every decision is an admission and each contender makes its full decision
(its script, its sorted set, its counters). Reported per contender, as medians over the
rounds: admitted decisions per second, client CPU per decision (``time.process_time``),
and server CPU per decision (``INFO commandstats``). Any refusal fails the run.

The floor is ``EVALSHA`` of a script that returns 1, sent by redis-py's
``execute_command`` as every peer sends its commands; ``floor_packed`` is the same
command sent the way hazina sends its own (packed once, on a connection of the pool).
The asyncio rows run ``--tasks`` concurrent tasks on one event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import limits
import limits.aio
import limits.aio.storage
import limits.storage
import pyrate_limiter
import redis
import redis.asyncio

import hazina
from hazina._redis.wire import Packer, send
from hazina.redis import RedisBackend

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from redis_server import RedisServer

SyncDecide = Callable[[], bool]
AsyncDecide = Callable[[], Awaitable[bool]]
HUGE = 10**9


def server_usec(client: redis.Redis) -> float:
    """Microseconds of CPU the server spent in commands so far."""
    stats = client.info("commandstats")
    return float(sum(entry["usec"] for entry in stats.values()))


def sync_contenders(url: str, client: redis.Redis) -> dict[str, SyncDecide]:
    floor_sha = client.script_load("return 1")
    execute = client.execute_command

    def floor() -> bool:
        return execute("EVALSHA", floor_sha, 0) == 1

    # The floor again as hazina sends its own commands (packed once, written on a pool
    # connection): what is left per decision is the round trip itself.
    pool = client.connection_pool
    packed = Packer(pool).pack(("EVALSHA", floor_sha, 0))

    def floor_packed() -> bool:
        return bool(send(pool, packed) == 1)

    contenders: dict[str, SyncDecide] = {"floor_evalsha": floor, "floor_packed": floor_packed}
    backend = RedisBackend.from_url(url)
    registry = hazina.Registry(backend=backend)
    for algorithm in ("token_bucket", "gcra"):

        @hazina.rate_limited(
            f"bench-{algorithm}", registry=registry, rate=HUGE, per=1, algorithm=algorithm
        )
        def admitted() -> bool:
            return True

        contenders[f"hazina_{algorithm}"] = admitted

    storage = limits.storage.RedisStorage(url)
    item = limits.parse(f"{HUGE}/second")
    for name, strategy in (
        ("limits_moving_window", limits.strategies.MovingWindowRateLimiter),
        ("limits_sliding_window_counter", limits.strategies.SlidingWindowCounterRateLimiter),
        ("limits_fixed_window", limits.strategies.FixedWindowRateLimiter),
    ):
        contenders[name] = functools.partial(strategy(storage).hit, item, name)

    bucket = pyrate_limiter.RedisBucket.init(
        [pyrate_limiter.Rate(HUGE, pyrate_limiter.Duration.SECOND)],
        redis.Redis.from_url(url),
        "bench-pyrate",
    )
    pyrate = pyrate_limiter.Limiter(bucket)
    contenders["pyrate_limiter_redis_bucket"] = lambda: bool(
        pyrate.try_acquire("bench", blocking=False)
    )
    return contenders


async def async_contenders(url: str) -> dict[str, AsyncDecide]:
    client = redis.asyncio.Redis.from_url(url)
    floor_sha = await client.script_load("return 1")

    async def floor() -> bool:
        return bool(await client.execute_command("EVALSHA", floor_sha, 0) == 1)

    contenders: dict[str, AsyncDecide] = {"floor_evalsha": floor}
    registry = hazina.Registry(backend=RedisBackend.from_url(url))

    @hazina.rate_limited("bench-async", registry=registry, rate=HUGE, per=1)
    async def admitted() -> bool:
        return True

    contenders["hazina_token_bucket"] = admitted
    storage = limits.aio.storage.RedisStorage(f"async+{url}", implementation="redispy")
    item = limits.parse(f"{HUGE}/second")
    for name, strategy in (
        ("limits_moving_window", limits.aio.strategies.MovingWindowRateLimiter),
        ("limits_sliding_window_counter", limits.aio.strategies.SlidingWindowCounterRateLimiter),
        ("limits_fixed_window", limits.aio.strategies.FixedWindowRateLimiter),
    ):
        contenders[name] = functools.partial(strategy(storage).hit, item, name)
    bucket = await pyrate_limiter.RedisBucket.init(
        [pyrate_limiter.Rate(HUGE, pyrate_limiter.Duration.SECOND)],
        redis.asyncio.Redis.from_url(url),
        "bench-pyrate-async",
    )
    pyrate = pyrate_limiter.Limiter(bucket)

    async def pyrate_decide() -> bool:
        return bool(await pyrate.try_acquire_async("bench", blocking=False))

    contenders["pyrate_limiter_redis_bucket"] = pyrate_decide
    return contenders


def measure_sync(decide: SyncDecide, decisions: int, admin: redis.Redis) -> tuple[float, ...]:
    server_before = server_usec(admin)
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(decisions):
        if not decide():
            raise AssertionError("a benchmark decision was refused")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    server = server_usec(admin) - server_before
    return decisions / wall, cpu / decisions * 1e6, server / decisions


async def measure_async(
    decide: AsyncDecide, decisions: int, tasks: int, admin: redis.Redis
) -> tuple[float, ...]:
    each = decisions // tasks

    async def worker() -> None:
        for _ in range(each):
            if not await decide():
                raise AssertionError("a benchmark decision was refused")

    server_before = server_usec(admin)
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    server = server_usec(admin) - server_before
    done = each * tasks
    return done / wall, cpu / done * 1e6, server / done


def table(title: str, results: dict[str, list[tuple[float, ...]]]) -> str:
    best_peer = max(
        statistics.median(r[0] for r in runs)
        for name, runs in results.items()
        if name.startswith(("limits", "pyrate"))
    )
    floor = statistics.median(r[0] for r in results["floor_evalsha"])
    lines = [
        f"### {title}",
        "",
        "| contender | decisions/s | client CPU µs/decision | server CPU µs/decision "
        "| vs best peer | vs floor |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, runs in sorted(
        results.items(), key=lambda item: -statistics.median(r[0] for r in item[1])
    ):
        rate = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        server = statistics.median(r[2] for r in runs)
        lines.append(
            f"| {name} | {rate:,.0f} | {cpu:.1f} | {server:.1f} | {rate / best_peer:.2f}x "
            f"| {rate / floor:.2f}x |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--decisions", type=int, default=2000)
    parser.add_argument("--tasks", type=int, default=32)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        server = RedisServer(Path(workdir))
        try:
            admin = redis.Redis.from_url(server.url)
            sync = sync_contenders(server.url, admin)
            sync_results: dict[str, list[tuple[float, ...]]] = {name: [] for name in sync}
            for _ in range(options.rounds):
                for name, decide in sync.items():
                    sync_results[name].append(measure_sync(decide, options.decisions, admin))

            async def run_async() -> dict[str, list[tuple[float, ...]]]:
                contenders = await async_contenders(server.url)
                results: dict[str, list[tuple[float, ...]]] = {name: [] for name in contenders}
                for _ in range(options.rounds):
                    for name, decide in contenders.items():
                        results[name].append(
                            await measure_async(decide, options.decisions, options.tasks, admin)
                        )
                return results

            async_results = asyncio.run(run_async())
        finally:
            server.stop()
    print(table("Sync, one process", sync_results))
    print()
    print(table(f"asyncio, {options.tasks} tasks on one loop", async_results))


if __name__ == "__main__":
    main()
