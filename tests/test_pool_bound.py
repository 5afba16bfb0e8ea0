"""`Refresher(max_connections=N)`: a data pool the user sizes (issue 23, fleet cost). 16
readers share 2 connections per master (what Redis sees, CLIENT LIST), a pool that stays
exhausted is refresher's CacheUnavailable (or with fail_open the loader), bad values fail
at construction."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis

from refresher import CacheUnavailable, Refresher
from refresher.io import lean, pools
from refresher.io.drivers import loop
from tests.support.holding import hold_async, hold_sync
from tests.support.reading import Reading
from tests.support.sentinel import SentinelServers
from tests.support.servers import RedisServer
from tests.test_connections import cache_nodes

READERS, KEYS, ROUNDS = 16, 32, 3
REDIS_PY = tuple(int(part) for part in redis.__version__.split(".")[:2])


class DataConnections:
    """Polls CLIENT LIST on every master until stopped: the most data connections opened
    since it was made that a master held at once. A connection is told apart by what it
    ends as (a tracking connection is named, a pub/sub one subscribed, the broker's on
    database 1, a Cluster client's last asked for the slot map), read once the readers are
    done: in its first microseconds each is a plain connection yet."""

    def __init__(self, nodes: list[redis.Redis]) -> None:
        self.nodes = nodes
        self.before = [{c["id"] for c in node.client_list()} for node in nodes]
        self.seen: list[list[set[str]]] = [[] for _ in nodes]  # per master, the new connections of each sample
        self.peak: list[int] = []
        self.topology = 0  # a Cluster client's connection for the slot map (redis.asyncio keeps one)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch)

    def _watch(self) -> None:
        while not self.stop.wait(0.002):
            for node, before, seen in zip(self.nodes, self.before, self.seen):
                seen.append({c["id"] for c in node.client_list()} - before)

    def __enter__(self) -> DataConnections:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()
        for node, before, seen in zip(self.nodes, self.before, self.seen):
            clients = node.client_list()
            topology = {c["id"] for c in clients if c["cmd"] in ("cluster|slots", "cluster|shards")}
            other = topology | {c["id"] for c in clients
                                if c.get("name") == "refresher-near-cache" or c.get("db", "0") != "0" or "P" in c["flags"]}
            self.peak.append(max(len(ids - other) for ids in seen))
            self.topology += len(topology - before)

    @property
    def samples(self) -> int:
        return len(self.seen[0])


def bounded_cache(redis_server: RedisServer, **options: Any) -> Refresher:
    """A Refresher of the test's own, its broker on database 1 (apart from the cache's)."""
    return Refresher(broker_url=f"redis://127.0.0.1:{redis_server.port}/1", namespace=f"bound{uuid.uuid4().hex[:8]}", **options)


@pytest.mark.parametrize("bound", [2, None])
def test_16_readers_share_the_2_data_connections_of_each_master(
    r: redis.Redis, redis_server: RedisServer, reading: Reading, bound: int | None
) -> None:
    """16 readers (threads, or tasks on one loop), each reading 32 keys three times in its
    own order: misses coalesced onto one load per key, then hits. With max_connections=2
    no master ever sees more than 2 data connections and no read fails; unbounded (the
    control, proving the count sees them) the readers open more."""
    peak = read_with_16(bounded_cache(redis_server, max_connections=bound), cache_nodes(r), reading)
    if bound is None:
        assert max(peak) > 2, peak
    else:
        assert max(peak) == 2 and all(one <= 2 for one in peak), peak


@pytest.mark.standalone_only
def test_a_sentinel_masters_pool_is_bounded_too(redis_server: RedisServer, reading: Reading) -> None:
    sentinel = SentinelServers()
    sentinel.start()
    try:
        master = redis.Redis(port=sentinel.master.port)
        peak = read_with_16(bounded_cache(redis_server, max_connections=2, redis_url=sentinel.url), [master], reading)
        master.close()
    finally:
        sentinel.stop()
    assert peak == [2]


def read_with_16(cache: Refresher, masters: list[redis.Redis], reading: Reading) -> list[int]:
    """The readers' run: every read right, one load per key, no error; the most data
    connections each master saw at once."""
    loads = []

    @cache.loader(ttl=60, name=f"tests.bound.{uuid.uuid4().hex}")
    def value(n: int) -> int:
        loads.append(n)
        time.sleep(0.005)  # misses overlap
        return n * 10

    def order(reader: int) -> list[int]:
        return [(reader + step) % KEYS for step in range(KEYS)] * ROUNDS

    def read(reader: int) -> int:
        return sum(value.get(n) == n * 10 for n in order(reader))

    async def aread(reader: int) -> int:
        return sum([await value.aget(n) == n * 10 for n in order(reader)])

    async def all_tasks() -> list[int]:
        return list(await asyncio.gather(*(aread(i) for i in range(READERS))))

    started = time.monotonic()
    with DataConnections(masters) as seen:
        if reading.mode == "sync":
            with ThreadPoolExecutor(READERS) as pool:
                right = list(pool.map(read, range(READERS)))
        else:
            right = loop.run(all_tasks)
    took = time.monotonic() - started
    stats = cache.stats.snapshot()
    print(f"\n{reading.mode} {cache.target.kind} max_connections={cache.max_connections}: {READERS * KEYS * ROUNDS} "
          f"reads in {took:.2f} s, data connections per master at most {seen.peak} ({seen.samples} samples; "
          f"slot-map connections {seen.topology}), loads {len(loads)}, errors {stats.get('error', 0)}, "
          f"cache_unavailable {stats.get('cache_unavailable', 0)}")
    cache.close()
    assert right == [KEYS * ROUNDS] * READERS  # every read right, none failed
    assert stats.get("error", 0) == 0 and stats.get("cache_unavailable", 0) == 0
    assert sorted(loads) == list(range(KEYS))  # one load per key
    assert seen.samples >= 3
    return seen.peak


@pytest.mark.parametrize("fail_open", [False, True])
def test_an_exhausted_pool_is_refreshers_error_after_one_socket_timeout(
    redis_server: RedisServer, reading: Reading, fail_open: bool
) -> None:
    """The pool's only connection (each master's; on an asyncio Cluster client, its one
    turn) is held elsewhere: a read waits socket_timeout (0.3 s), once, for it, then raises
    CacheUnavailable, not redis-py's ConnectionError; with fail_open the loader answers.
    Once the connection is back, reads go to Redis again."""
    cache = bounded_cache(redis_server, max_connections=1, socket_timeout=0.3, fail_open=fail_open)

    @cache.loader(ttl=60, name=f"tests.bound.{uuid.uuid4().hex}")
    def value(n: int) -> int:
        return n * 10

    give_back = hold_sync(cache) if reading.mode == "sync" else hold_async(cache)
    started = time.monotonic()
    if fail_open:
        assert reading.get(value, 1) == 10
    else:
        with pytest.raises(CacheUnavailable, match=r"all 1 stayed busy for 0.3 s \(max_connections\)") as raised:
            reading.get(value, 1)
        assert not isinstance(raised.value, redis.RedisError)
    waited = time.monotonic() - started
    print(f"\n{reading.mode} fail_open={fail_open}: an exhausted pool answered after {waited * 1000:.0f} ms")
    # One wait; redis-py's sync Cluster client before 6.4 takes it for a node failing (a
    # slot-map refresh, and a wait per retry: 3 in all).
    assert 0.25 <= waited < (0.55 if not (cache.target.cluster and reading.mode == "sync" and REDIS_PY < (6, 4)) else 1.2)
    give_back()
    assert reading.get(value, 2) == 20
    assert cache.stats.snapshot()["cache_unavailable"] == 1
    cache.close()


@pytest.mark.parametrize("bad", [0, -1, 2.0, "2", True, False])
def test_a_bad_bound_is_refused_at_construction(bad: object) -> None:
    with pytest.raises(ValueError, match="max_connections must be a whole number"):
        Refresher(max_connections=bad)  # type: ignore[arg-type]


def test_the_bound_from_the_environment_and_the_url(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """REFRESHER_MAX_CONNECTIONS sizes the pools refresher builds; max_connections= wins over
    it; a plain URL's ?max_connections= is the same option, so giving both is refused, as
    is a bound beside a client the user built (its pool is theirs)."""
    url = f"redis://127.0.0.1:{redis_server.port}/0"
    monkeypatch.setenv("REFRESHER_MAX_CONNECTIONS", "3")
    assert Refresher(url).max_connections == 3
    assert Refresher(url, max_connections=5).max_connections == 5
    from_url = Refresher(url + "?max_connections=4")
    assert isinstance(from_url.redis.connection_pool, pools.Waits) and from_url.redis.connection_pool.max_connections == 4
    assert Refresher(url, redis=redis.Redis.from_url(url)).max_connections == 3  # for the asyncio pools it builds
    monkeypatch.setenv("REFRESHER_MAX_CONNECTIONS", "zero")
    with pytest.raises(ValueError, match="REFRESHER_MAX_CONNECTIONS must be a whole number"):
        Refresher(url)
    monkeypatch.delenv("REFRESHER_MAX_CONNECTIONS")
    with pytest.raises(ValueError, match="not both"):
        Refresher(url + "?max_connections=4", max_connections=4)
    with pytest.raises(ValueError, match=r"\?max_connections= must be a whole number"):
        Refresher(url + "?max_connections=0")
    with pytest.raises(ValueError, match="max_connections or redis=, not both"):
        Refresher(url, redis=redis.Redis.from_url(url), max_connections=2)


@pytest.mark.standalone_only
def test_the_bounded_pool_keeps_the_lean_connections(redis_server: RedisServer) -> None:
    """The bound changes the pool's class, not the connections': where lean.py's 3-syscall
    connection and its fork hook apply, a bounded pool has them, and hits keep their own GET."""
    cache = bounded_cache(redis_server, max_connections=2)
    pool = cache.redis.connection_pool
    assert isinstance(pool, pools.Waits) and (pool.max_connections, pool.timeout) == (2, 1.0)
    if lean.PARSER_KNOWN and lean.PID_CHECKED:
        assert isinstance(pool, lean.ForkAwareBlockingPool) and pool.connection_class is lean.TimedConnection
        assert lean.getter(cache.redis) != cache.redis.get
    cache.close()
