"""The measurement of `python -m bench.nearhit` (see there), in a child process of its own:
the values read, the contenders, the alternating rounds and the profile."""

from __future__ import annotations

import cProfile
import json
import os
import pstats
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, cast

from bench.origin import RECORD

KEY = "user-1001"


# The contenders: label, and whether it reads memory (many reads a round) or Redis. The
# values are made in `measure` (bench.codec, which has the dataclass and Struct, imports refresher).
KINDS: list[tuple[str, bool]] = [
    ("raw GET + json.loads (redis-py defaults)", False),
    ("near hit: dict (a copy per hit)", True),
    ("near hit: str (shared)", True),
    ("near hit: int (shared)", True),
    ("near hit: tuple[str, ...] (shared)", True),
    ("near hit: frozen dataclass (shared; bench.codec's User)", True),
    ("near hit: frozen msgspec Struct (shared; bench.codec's UserStruct)", True),
    ("hit, near cache off: dict (a GET each)", False),
]


@dataclass(frozen=True)
class Scale:
    rounds: int
    memory_reads: int  # per round, a near contender
    redis_reads: int  # per round, a contender that reads Redis
    profiled: int


FULL = Scale(rounds=30, memory_reads=20_000, redis_reads=2_000, profiled=50_000)
QUICK = Scale(rounds=4, memory_reads=2_000, redis_reads=200, profiled=5_000)


def measure(scale: Scale) -> dict[str, Any]:
    """In a child process, with whichever refresher is first on sys.path (bench.codec
    imports refresher: imported here, not at the top)."""
    import redis

    from bench.codec import USER, USER_STRUCT, User, UserStruct, alternate
    from refresher import Refresher
    from tests.support.servers import RedisServer

    values: list[tuple[Any, Any]] = [(RECORD, dict[str, Any]), (json.dumps(RECORD), str), (1001, int),
                                     (tuple(RECORD["roles"]), tuple[str, ...]), (USER, User),
                                     (USER_STRUCT, UserStruct), (RECORD, dict[str, Any])]
    server = RedisServer()
    server.start()
    cache = Refresher(server.url, near_cache=10_000, namespace="nearhit")
    raw = redis.Redis.from_url(server.url)
    try:
        assert cache.near is not None and cache.tracker.wait_live(10)
        loaders = [cache.loader(ttl=3600, name=f"nearhit.{i}", near=near)(_origin(*value))
                   for i, ((_, near), value) in enumerate(zip(KINDS[1:], values))]
        for load in loaders:
            for _ in range(3):  # a load, its own write dropping the copy, a GET that keeps it
                load.get(KEY)
        raw.set("nearhit.raw", json.dumps(RECORD, separators=(",", ":")))
        hits = cache.stats["near_hit"]
        reads = [scale.memory_reads if near else scale.redis_reads for _, near in KINDS]
        rounds = [_raw_reads(raw, reads[0]), *(_reads(load, n) for load, n in zip(loaders, reads[1:]))]
        loads = [os.getloadavg()[0]]
        timing = alternate(rounds, scale.rounds, 1)
        loads.append(os.getloadavg()[0])
        near_reads = sum(n for (_, near), n in zip(KINDS, reads) if near) * scale.rounds
        assert cache.stats["near_hit"] - hits == near_reads, "a near read went to Redis"
        version = str(raw.info("server")["redis_version"])
        return {"wall": _per_read(timing.wall, reads), "cpu": _per_read(timing.cpu, reads), "loads": loads,
                "redis": version, "profile": {label: _profile(load, scale.profiled)
                                              for label, load in (("dict", loaders[0]), ("str", loaders[1]))}}
    finally:
        cache.close()
        raw.close()
        server.stop()


def _origin(value: Any, annotation: Any) -> Callable[[str], Any]:
    def load(key: str) -> Any:
        return value

    load.__annotations__ = {"key": str, "return": annotation}
    return load


def _reads(load: Any, n: int) -> Callable[[], None]:
    get = load.get

    def reads() -> None:
        for _ in range(n):
            get(KEY)

    return reads


def _raw_reads(raw: Any, n: int) -> Callable[[], None]:
    def reads() -> None:
        for _ in range(n):
            json.loads(raw.get("nearhit.raw"))

    return reads


def _per_read(rounds: list[list[float]], reads: list[int]) -> list[list[float]]:
    return [[t / n for t, n in zip(r, reads)] for r in rounds]


def _profile(load: Any, n: int) -> list[tuple[str, float]]:
    """µs per hit in each function's own code (cProfile's tottime), the largest first."""
    profile = cProfile.Profile()
    profile.runcall(_reads(load, n))
    stats = cast(dict[tuple[str, int, str], tuple[Any, ...]], pstats.Stats(profile).stats)  # type: ignore[attr-defined]
    parts = sorted(((f"{Path(file).name}:{name}", tt / n * 1e6) for (file, _, name), (_, _, tt, *_) in stats.items()),
                   key=lambda part: -part[1])
    return parts[:10] + [("all of it", sum(us for _, us in parts))]
