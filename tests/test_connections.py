"""Connections are a budget the user sets: reads that wait for another process's load
never take connections from the user's pool, nor leave any open (issue 19, finding 2)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from redis.cluster import RedisCluster

from tests.support.reading import Reading
from tests.support.readers import CTX, run_readers
from tests.support.servers import RedisServer

PROCESSES, READERS = 4, 8  # as many readers per process as the pool has connections


@pytest.mark.parametrize("pool", ["plain", "blocking"])
def test_a_pool_of_8_survives_200_cross_process_waits(
    r: redis.Redis, reading: Reading, pool: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """4 processes x 8 readers, each reading its own 10 keys in step with its peers in the
    other processes (a 200 ms loader): 80 keys, each loaded by one process while the
    other three wait on it, with the user's client at max_connections=8."""
    from tests.support.budget import KEYS_PER_READER

    monkeypatch.setenv("REFRESHER_TEST_POOL", pool)  # read by the spawned readers
    reports = run_readers("tests.support.budget.walk", [], processes=PROCESSES, threads=READERS, mode=reading.mode)
    assert [e for rep in reports for e in rep.errors] == []
    assert sum(rep.values == [KEYS_PER_READER] * READERS for rep in reports) == PROCESSES
    assert sum(rep.stats.get("load", 0) for rep in reports) == READERS * KEYS_PER_READER  # one per key
    assert sum(rep.stats.get("waited", 0) for rep in reports) >= 200
    for rep in reports:
        assert rep.stats["most_made_by_one_pool"] <= 8, rep.stats
        assert rep.stats["sockets"] <= rep.stats["budget"], rep.stats


def test_a_waiter_keeps_one_subscription_for_its_whole_wait(r: redis.Redis, redis_server: RedisServer, reading: Reading) -> None:
    """A read waits 2 s on another process's load whose lock (0.33 s TTL, kept alive) it
    goes back to five times: it keeps its one subscription, so near the load's end Redis
    has one connection of ours subscribed, not one per retry (issue 19, finding 7)."""
    from tests.support import budget

    reading.get(budget.slow, 0, 0)  # warm: this process's pools connected
    control = redis.Redis.from_url(redis_server.url)
    loader = CTX.Process(target=budget.load_long, args=(7,))
    loader.start()
    with ThreadPoolExecutor(1) as pool:
        assert control.blpop(["test:budget:entered"], timeout=30) is not None
        waiting = pool.submit(reading.get, budget.long, 7)
        assert control.blpop(["test:budget:late"], timeout=30) is not None
        subscribed = [c for node in cache_nodes(r) for c in node.client_list() if c["cmd"] == "ssubscribe"]
        assert waiting.result(timeout=30) == 7
    loader.join(timeout=10)
    assert budget.cache.stats.snapshot()["waited"] >= 3  # counted at each return to the lock
    assert len(subscribed) == 1, subscribed


def cache_nodes(r: redis.Redis | RedisCluster) -> list[redis.Redis]:
    if isinstance(r, RedisCluster):
        return [node.redis_connection for node in r.get_primaries() if node.redis_connection is not None]
    return [r]


def test_a_channel_subscribed_again_before_its_first_confirmation_waits_for_its_own() -> None:
    """The last waiter of a channel leaves before its SSUBSCRIBE is confirmed and a new one
    arrives: the first confirmation (the server then unsubscribes) must not tell the new
    waiter it is listening; the second does, and only then do messages reach it."""
    from queue import SimpleQueue

    from refresher.io.drivers.board import SUBSCRIBED, Board

    board: Board[SimpleQueue[object]] = Board()
    first, second = SimpleQueue[object](), SimpleQueue[object]()
    assert board.join(b"c", first) == (True, True)
    assert board.leave(b"c", first)  # SUNSUBSCRIBE
    assert board.join(b"c", second) == (True, True)  # SSUBSCRIBE again
    assert board.heard([b"ssubscribe", b"c", 1]) == ([], None)
    assert board.heard([b"smessage", b"c", b"old"]) == ([], None)
    assert board.heard([b"sunsubscribe", b"c", 0]) == ([], None)
    assert board.heard([b"ssubscribe", b"c", 1]) == ([second], SUBSCRIBED)
    assert board.heard([b"smessage", b"c", b"vnew"]) == ([second], b"vnew")
    assert board.heard([b"message", b"c", b"vplain"]) == ([second], b"vplain")  # Redis 6.2's kind
