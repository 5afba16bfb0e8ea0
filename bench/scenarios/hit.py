"""3. Hit path: one thread reads a fresh key, against raw redis-py GET + json.loads.

The baseline (issue 12) reads the same JSON payload with a GET on a redis-py client with
redis-py's defaults, then json.loads; the same raw read on the strategy's own client is timed
too, in the same alternating rounds. Ratios are the median of the per-round ratios, as a cost
(the strategy's time over the baseline's). 3d times that raw read on clients that differ from
the default by one setting each, 3e profiles where a refresher hit's CPU goes.
`run_async` (3b) does the same for the asyncio strategies: one task awaits the reads, one
after another, against a raw redis.asyncio GET + json.loads on the strategy's own client.
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import pstats
from typing import Any, Awaitable, Callable, cast

import redis
from redis._parsers import _RESP2Parser
from redis.backoff import NoBackoff
from redis.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

from bench import origin
from bench.codec import Timing, alternate
from bench.context import Context
from bench.measure import alternating, median_ratio, median_seconds
from bench.report import Table, Target
from bench.scenarios import Outcome
from bench.strategies import ASYNC_NAMES, LABELS, NAMES, AsyncStrategy, build, build_async
from bench.workloads import FRESH
from refresher.io.connect import parse, sync_client
from refresher.io.lean import TimedConnection

TARGET = 1.05  # a refresher hit's cost, at most this many times a default-client raw GET + json.loads (issue 12)
ASYNC_TARGET = 0.9
PROFILED_READS = 2000
# Where a get hit's time goes (3e), as AGET_PARTS below.
GET_PARTS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("the GET in redis-py (execute_command: pool, pack, send, receive, parse)",
     (("redis/client.py", "execute_command"),)),
    ("the read decision (core/read.py `after_get`: envelope, policy, decode, count)",
     (("refresher/core/read.py", "after_get"),)),
    ("arguments and keys (calls.py)", (("refresher/core/calls.py", "__call__"),)),
)
SYNC_COLUMNS = ["strategy", "µs per read", "µs per raw read, default client", "µs per raw read, strategy's client",
                "cost vs default raw (wall)", "cost vs default raw (client CPU)",
                "strategy's client raw vs default raw (wall)"]
SETTINGS_COLUMNS = ["client", "µs per raw read", "cost vs defaults (wall)", "cost vs defaults (client CPU)",
                    "spread of the wall ratios (quartiles)"]
# Where an aget hit's time goes: (label, functions (file suffix, name) whose cumulative times add up to it).
AGET_PARTS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("the GET in redis.asyncio (execute_command: pack, send, receive, parse)",
     (("redis/asyncio/client.py", "execute_command"),)),
    ("the read decision (core/read.py `after_get`: envelope, policy, decode, count)",
     (("refresher/core/read.py", "after_get"),)),
    ("arguments and keys (calls.py)", (("refresher/core/calls.py", "__call__"),)),
    ("the loop's driver (Refresher.aio)", (("refresher/api/client.py", "aio"),)),
)
COLUMNS = ["strategy", "ops/s", "raw GET ops/s", "ratio (median of rounds)", "µs per read", "µs per raw read"]


def _repeat(n: int, read: Callable[[], object]) -> Callable[[], None]:
    def reads() -> None:
        for _ in range(n):
            read()

    return reads


def _arepeat(loop: asyncio.AbstractEventLoop, n: int, read: Callable[[], Awaitable[object]]) -> Callable[[], None]:
    """`n` awaited reads, run to completion on `loop`: one round of `alternating`."""
    async def reads() -> None:
        for _ in range(n):
            await read()

    return lambda: loop.run_until_complete(reads())


def _row(table: Table, name: str, rounds: list[list[float]], n: int) -> float:
    ratio = median_ratio(rounds)
    us, us_raw = (median_seconds(rounds, i) / n * 1e6 for i in (0, 1))
    table.add(LABELS[name], 1e6 / us, 1e6 / us_raw, ratio, us, us_raw)
    return ratio


def _raw_reads(client: redis.Redis, key: str, n: int) -> Callable[[], None]:
    def reads() -> None:
        get, loads = client.get, json.loads
        for _ in range(n):
            loads(cast(bytes, get(key)))

    return reads


def _cost(timing: Timing, i: int, cpu: bool = False) -> float:
    """Contender i's time over the baseline's (contender 1's): the median of the per-round ratios."""
    return median_ratio(timing.cpu if cpu else timing.wall, a=1, b=i)


def run(ctx: Context) -> Outcome:
    s = ctx.scale
    n = s.hit_reads // s.hit_rounds
    table = Table(
        f"3. Hit path: one thread, {n * s.hit_rounds:,} reads of a fresh key per strategy, "
        f"{s.hit_rounds} alternating rounds against raw GET + json.loads on a default redis-py client",
        SYNC_COLUMNS,
        notes=["Cost: the strategy's time per read over the raw read's on a client with redis-py's defaults, the "
               "median of the per-round ratios (lower is better; 1.05 is 5% slower). Client CPU: this process's "
               "CPU time, which leaves out redis-server and waits for a CPU: the client's own cost, on a busy "
               "machine. The last column is the strategy's own client doing the same raw read."],
    )
    default = redis.Redis.from_url(ctx.redis_url)
    costs: dict[str, tuple[float, float, float]] = {}
    for name in NAMES:
        strategy = build(ctx.spec(name, FRESH.name))
        strategy.warm()
        key, raw_key = f"hit-{name}", f"hit-raw-{name}"
        value = strategy.get(key)  # loads it once
        client = strategy.redis
        client.set(raw_key, json.dumps(value, separators=(",", ":")))
        reads = _repeat(n, lambda: strategy.get(key))
        timing = alternate([reads, _raw_reads(default, raw_key, n), _raw_reads(client, raw_key, n)], s.hit_rounds, n)
        strategy.close()
        costs[name] = (_cost(timing, 0), _cost(timing, 0, cpu=True), _cost(timing, 2))
        table.add(LABELS[name], timing.us(0), timing.us(1), timing.us(2), *(f"{c:.3f}x" for c in costs[name]))
    default.close()
    settings = _settings(ctx)
    profile, parts = _profile_get(ctx)
    cost, cpu, own = costs["refresher"]
    target = Target("hit", f"refresher get <= {TARGET}x a default-client raw GET + json.loads (cost, alternating rounds)",
                    f"{cost:.3f}x", cost <= TARGET)
    return Outcome([table, settings, profile], [target], findings=[_finding(cost, cpu, own, settings, parts)])


def _settings(ctx: Context) -> Table:
    """3d: the raw read on clients that each differ from redis-py's defaults by one setting."""
    s = ctx.scale
    n = s.hit_reads // s.hit_rounds

    def retry() -> Retry:
        return Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))

    url = ctx.redis_url
    clients: list[tuple[str, redis.Redis]] = [
        ("redis-py's defaults (the baseline)", redis.Redis.from_url(url)),
        ("socket_timeout=1 (Python's timeout mode: a poll() before each send and each recv)",
         redis.Redis.from_url(url, socket_timeout=1.0)),
        ("socket_connect_timeout=1", redis.Redis.from_url(url, socket_connect_timeout=1.0)),
        ("retry=Retry(NoBackoff(), 1, supported_errors=(ConnectionError,))", redis.Redis.from_url(url, retry=retry())),
        ("the RESP parser in Python (no hiredis)", redis.Redis.from_url(url, parser_class=_RESP2Parser)),
        ("refresher's client before issue 12: the three settings above it",
         redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0, retry=retry())),
        ("the same, the socket timeout kept by the kernel (SO_RCVTIMEO, SO_SNDTIMEO)",
         redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0, retry=retry(),
                              connection_class=_KernelTimeoutsOnly)),
        ("refresher's client now (connect.py): that, and one poll() answers the pool's can_read",
         cast(redis.Redis, sync_client(parse(url), 1.0))),
    ]
    key = "hit-settings"
    clients[0][1].set(key, json.dumps(origin.RECORD, separators=(",", ":")))
    contenders = [_raw_reads(client, key, n) for _, client in clients]
    for read in contenders:  # every client connected and warm before the first round
        read()
    timing = alternate(contenders, s.hit_rounds, n)
    table = Table(
        f"3d. The raw read (GET + json.loads) on clients with one setting changed, {n * s.hit_rounds:,} reads each, "
        f"{s.hit_rounds} alternating rounds",
        SETTINGS_COLUMNS,
        notes=["Cost: time per read over the baseline's, the median of the per-round ratios. System calls per GET "
               "(strace): redis-py's defaults 5 (the pool's can_read: ioctl to non-blocking, a recv that fails, "
               "ioctl back; then send, recv); Python's socket timeout adds a poll() before the send and the recv "
               "(7); the kernel's timeouts add none (5); refresher's client now makes 3 (poll, send, recv)."],
    )
    for i, (label, client) in enumerate(clients):
        table.add(label, timing.us(i), f"{_cost_vs(timing, i):.3f}x", f"{_cost_vs(timing, i, cpu=True):.3f}x",
                  _spread(timing, i))
        client.close()
    return table


class _KernelTimeoutsOnly(TimedConnection):
    """refresher's connection with redis-py's own can_read (3d's row between the two)."""

    def can_read(self, timeout: float = 0) -> bool:
        return bool(Connection.can_read(self, timeout))


def _cost_vs(timing: Timing, i: int, cpu: bool = False) -> float:
    return median_ratio(timing.cpu if cpu else timing.wall, a=0, b=i)


def _spread(timing: Timing, i: int) -> str:
    ratios = sorted(r[i] / r[0] for r in timing.wall)
    return f"{ratios[len(ratios) // 4]:.3f} – {ratios[(3 * len(ratios)) // 4]:.3f}"


def _profile_get(ctx: Context) -> tuple[Table, dict[str, float]]:
    """3e: refresher get hits, then a raw GET + json.loads on a default client, under cProfile."""
    strategy = build(ctx.spec("refresher", FRESH.name))
    strategy.warm()
    default = redis.Redis.from_url(ctx.redis_url)
    key, raw_key = "hit-refresher", "hit-raw-refresher"  # loaded by run
    out = []
    reads: list[Callable[[], object]] = [lambda: strategy.get(key), lambda: json.loads(cast(bytes, default.get(raw_key)))]
    for read in reads:
        for _ in range(100):
            read()
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(PROFILED_READS):
            read()
        profiler.disable()
        out.append(pstats.Stats(profiler))
    default.close()
    mine, raw = out
    total = _us(mine, (("refresher/api/reads.py", "get"),))
    table = Table(
        f"3e. Hit path profile: where refresher get's CPU goes, {PROFILED_READS:,} hits under cProfile",
        ["part", "µs per read (profiled)", "share of get"],
        notes=["CPU time in each part's call stack (cProfile's cumulative time). cProfile slows everything down, "
               "Python calls most: compare the shares, and the raw read's row, profiled the same way: a GET on a "
               f"default client took {_us(raw, (('redis/client.py', 'execute_command'),)):.1f} µs, its json.loads "
               f"{_us(raw, (('json/__init__.py', 'loads'),)):.1f} µs per read."],
    )
    parts = [(label, _us(mine, functions)) for label, functions in GET_PARTS]
    rest = total - sum(t for _, t in parts)
    for label, took in [*parts, ("the rest: the loader (`Loader.get`) and the driver's GET (SyncDriver.get)", rest),
                        ("get, all of it", total)]:
        table.add(label, took, f"{took / total:.0%}")
    get, decide, calls = (t for _, t in parts)
    return table, {"total": total, "get": get, "read": decide, "calls": calls, "rest": rest,
                   "raw_get": _us(raw, (("redis/client.py", "execute_command"),)),
                   "loads": _us(raw, (("json/__init__.py", "loads"),))}


def _us(stats: pstats.Stats, functions: tuple[tuple[str, str], ...]) -> float:
    """Cumulative µs per profiled read in the named functions."""
    table = stats.stats  # type: ignore[attr-defined]
    return float(sum(v[3] for path, function in functions
                     for (file, _, name), v in table.items() if file.endswith(path) and name == function)
                 ) / PROFILED_READS * 1e6


def _finding(cost: float, cpu: float, own: float, settings: Table, parts: dict[str, float]) -> str:
    rows = {row[0]: row for row in settings.rows}

    def setting(prefix: str) -> str:
        row = next(r for label, r in rows.items() if label.startswith(prefix))
        return row[2]

    before, kernel, now = (setting(p) for p in ("refresher's client before", "the same, the socket", "refresher's client now"))
    return (
        f"**Hit path (issue 12).** A refresher get hit cost {cost:.3f}x a raw GET + json.loads on a client with "
        f"redis-py's defaults ({cpu:.3f}x in client CPU; target {TARGET}x); refresher's own client doing that raw "
        f"read cost {own:.3f}x. Table 3d prices each client setting alone: Python's socket timeout "
        f"{setting('socket_timeout')}, the connect timeout {setting('socket_connect_timeout')}, the retry "
        f"{setting('retry=')}, a parser without hiredis {setting('the RESP parser')}; refresher's client before "
        f"this issue {before}, with the kernel keeping its timeout {kernel}, now (one poll() for the pool's "
        f"can_read too) {now}. "
        f"Under cProfile (3e) the GET is {parts['get'] / parts['total']:.0%} of a hit's CPU; the read decision takes "
        f"{parts['read']:.1f} µs against the raw read's json.loads {parts['loads']:.1f} µs (profiled figures, "
        "inflated alike)."
    )


def run_async(ctx: Context) -> Outcome:
    s = ctx.scale
    n = s.async_hit_reads // s.hit_rounds
    table = Table(
        f"3b. Async hit path: one asyncio task, {n * s.hit_rounds:,} awaited reads of a fresh key per strategy, "
        f"{s.hit_rounds} alternating rounds against raw redis.asyncio GET + json.loads on the same client",
        COLUMNS,
    )
    ratios: dict[str, float] = {}
    for name in ASYNC_NAMES:
        loop = asyncio.new_event_loop()
        try:
            ratios[name] = _row(table, name, _arounds(ctx, loop, name, n), n)
        finally:
            loop.run_until_complete(origin.aclose())
            loop.close()
    ratio = ratios["refresher-async"]
    loop = asyncio.new_event_loop()
    try:
        profile, parts = _profile_aget(ctx, loop)
    finally:
        loop.run_until_complete(origin.aclose())
        loop.close()
    row, naive = (table.rows[ASYNC_NAMES.index(name)] for name in ("refresher-async", "naive-async"))
    finding = (
        f"**Async hit path, where the time goes.** refresher aget ran at {ratio:.3f}x a raw redis.asyncio GET + "
        f"json.loads ({row[4]} vs {row[5]} µs per read; target {ASYNC_TARGET}x). Under cProfile (table 3c) the GET "
        f"itself is {parts['get'] / parts['total']:.0%} of aget's CPU; refresher's own code is the rest: the read "
        f"decision {parts['read']:.1f} µs (the raw read's json.loads: {parts['loads']:.1f} µs), the driver stepping "
        f"the hit through the core's `fetch` generator {parts['stepping']:.1f} µs, arguments, keys and the loop's "
        f"driver {parts['calls'] + parts['aio']:.1f} µs (profiled figures, inflated alike). The sync `get` makes its "
        "GET itself and steps no generator on a hit; `aget` runs every hit through the async driver. Apart from "
        f"the ratio, the raw GET itself took {row[5]} µs on refresher's client and {naive[5]} µs on naive's: "
        "refresher's client sets socket_timeout (1 s), and redis.asyncio then runs each command's I/O under "
        "a timeout (`asyncio.wait_for`, which on Python 3.11 makes a task per call); cashews' client does too. "
        "That cost is the same on both sides of this ratio, but not in 1b and 2c, where naive's client has no timeout."
    )
    target = Target("hit (async)", f"refresher aget >= {ASYNC_TARGET}x raw redis.asyncio GET + json.loads",
                    f"{ratio:.3f}x", ratio >= ASYNC_TARGET)
    return Outcome([table, profile], [target], findings=[finding])


def _arounds(ctx: Context, loop: asyncio.AbstractEventLoop, name: str, n: int) -> list[list[float]]:
    async def build_and_warm() -> AsyncStrategy:
        built = build_async(ctx.spec(name, FRESH.name))  # inside the loop: its connections are this loop's
        await built.warm()
        return built

    strategy = loop.run_until_complete(build_and_warm())
    key, raw_key = f"hit-{name}", f"hit-raw-{name}"
    try:
        value = loop.run_until_complete(strategy.get(key))  # loads it once
        client = strategy.redis
        loop.run_until_complete(client.set(raw_key, json.dumps(value, separators=(",", ":"))))

        async def raw_read() -> Any:
            return json.loads(cast(bytes, await client.get(raw_key)))

        return alternating([_arepeat(loop, n, lambda: strategy.get(key)), _arepeat(loop, n, raw_read)],
                           ctx.scale.hit_rounds)
    finally:
        loop.run_until_complete(strategy.close())


def _profile_aget(ctx: Context, loop: asyncio.AbstractEventLoop) -> tuple[Table, dict[str, float]]:
    """refresher aget hits, then raw GET + json.loads, under cProfile: CPU per read, by part."""
    async def profiled() -> tuple[pstats.Stats, pstats.Stats]:
        strategy = build_async(ctx.spec("refresher-async", FRESH.name))
        await strategy.warm()
        key, raw_key = "hit-refresher-async", "hit-raw-refresher-async"  # loaded by run_async
        client = strategy.redis
        out = []

        async def aget() -> object:
            return await strategy.get(key)

        async def raw_read() -> object:
            return await _raw(client, raw_key)

        reads: list[Callable[[], Awaitable[object]]] = [aget, raw_read]
        for read in reads:
            for _ in range(100):
                await read()
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(PROFILED_READS):
                await read()
            profiler.disable()
            out.append(pstats.Stats(profiler))
        await strategy.close()
        return out[0], out[1]

    mine, raw = loop.run_until_complete(profiled())

    def us(stats: pstats.Stats, functions: tuple[tuple[str, str], ...]) -> float:
        table = stats.stats  # type: ignore[attr-defined]
        return float(sum(v[3] for path, function in functions
                         for (file, _, name), v in table.items() if file.endswith(path) and name == function)
                     ) / PROFILED_READS * 1e6

    total = us(mine, (("refresher/api/areads.py", "aget"),))
    table = Table(
        f"3c. Async hit path profile: where refresher aget's CPU goes, {PROFILED_READS:,} hits under cProfile",
        ["part", "µs per read (profiled)", "share of aget"],
        notes=["CPU time in each part's call stack (cProfile's cumulative time; the wait for Redis's reply is "
               "the event loop's, outside aget). cProfile slows everything down: compare the shares, and "
               f"the raw read's row, profiled the same way: a raw redis.asyncio GET + json.loads took "
               f"{us(raw, (('redis/asyncio/client.py', 'execute_command'),)):.1f} µs + "
               f"{us(raw, (('json/__init__.py', 'loads'),)):.1f} µs per read."],
    )
    parts = [(label, us(mine, functions)) for label, functions in AGET_PARTS]
    stepping = total - sum(t for _, t in parts)
    for label, took in [*parts, ("the rest: driver stepping (io/drivers/aio.py `run`, Stepper, core/read.py `fetch`'s "
                                 "generator) and the handle", stepping), ("aget, all of it", total)]:
        table.add(label, took, f"{took / total:.0%}")
    get, read, calls, aio = (t for _, t in parts)
    return table, {"total": total, "get": get, "read": read, "calls": calls, "aio": aio, "stepping": stepping,
                   "loads": us(raw, (("json/__init__.py", "loads"),))}


async def _raw(client: Any, key: str) -> Any:
    return json.loads(cast(bytes, await client.get(key)))
