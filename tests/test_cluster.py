"""The cache on a real Redis Cluster (3 masters, 1 replica each), the broker on a plain
redis-server: what a team that outgrew one Redis runs."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any, Iterator

import pytest
from redis.cluster import RedisCluster

from refresher import CacheUnavailable, Refresher
from tests.support.cluster import RedisClusterServers
from tests.support.reading import Reading
from tests.support.waiting import lead_and_wait


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisClusterServers]:
    servers = RedisClusterServers()
    servers.start()
    yield servers
    servers.stop()


@pytest.fixture
def cache(cluster: RedisClusterServers, redis_url: str) -> Iterator[Refresher]:
    c = Refresher(cluster.url, broker_url=redis_url, queue="cluster-" + uuid.uuid4().hex[:8])
    yield c
    c.close()


@pytest.fixture
def rc(cluster: RedisClusterServers) -> Iterator[RedisCluster]:
    client = RedisCluster(host="127.0.0.1", port=cluster.nodes[0].port)
    yield client
    client.close()


def counted(cache: Refresher, delay: float = 0.0) -> tuple[Any, list[int]]:
    calls: list[int] = []

    @cache.loader(ttl=60, name="cluster.t" + uuid.uuid4().hex[:8])
    def load(n: int) -> dict[str, int]:
        calls.append(n)
        time.sleep(delay)
        return {"n": n, "call": len(calls)}

    return load, calls


def test_a_cluster_url_without_a_broker_url_fails_at_start_up(cluster: RedisClusterServers) -> None:
    with pytest.raises(ValueError, match="REFRESHER_BROKER_URL"):
        Refresher(cluster.url)


def test_reads_writes_and_get_many_across_slots(reading: Reading, cache: Refresher, rc: RedisCluster) -> None:
    load, calls = counted(cache)
    items = list(range(1, 31))  # keys spread over all three masters
    assert {rc.get_node_from_key(load.keys(n).value).name for n in items} == {
        n.name for n in rc.get_primaries()}
    assert reading.get_many(load, items) == [{"n": n, "call": i + 1} for i, n in enumerate(items)]
    assert reading.get_many(load, items) == [{"n": n, "call": i + 1} for i, n in enumerate(items)]
    assert len(calls) == 30
    reading.set(load, 7, {"n": 7, "call": -1})
    assert reading.get(load, 7) == {"n": 7, "call": -1}
    reading.invalidate(load, 7)
    assert reading.get(load, 7) == {"n": 7, "call": 31}


def test_a_waiter_is_woken_over_sharded_pub_sub(
    reading: Reading, cache: Refresher, cluster: RedisClusterServers, redis_url: str
) -> None:
    """Another Refresher (another process) waits for this one's load on the key's shard
    channel: woken with the value, it never loads."""
    other = Refresher(cluster.url, broker_url=redis_url)
    try:
        assert lead_and_wait(reading, cache, other, lambda n: n * 2, 21, ttl=60) == (42, 42)
    finally:
        other.close()


def test_a_killed_master_is_replaced_by_its_replica_and_reads_recover(
    reading: Reading, cache: Refresher, cluster: RedisClusterServers
) -> None:
    """SIGKILL the master that owns a key; its replica is promoted. Reads fail with
    CacheUnavailable (never hang past the socket timeout) until the new master serves the
    slot, then recover without a restart. The time to recover is printed."""
    load, calls = counted(cache)
    reading.get(load, 99)
    master = cluster.master_of(load.keys(99).value)
    killed_at = time.monotonic()
    master.stop(9)
    errors = 0
    while True:
        try:
            value = reading.get(load, 99)
            break
        except CacheUnavailable:
            errors += 1
            assert time.monotonic() - killed_at < 30, "the cluster never recovered"
            threading.Event().wait(0.05)
    recovered_in = time.monotonic() - killed_at
    print(f"recovered {recovered_in:.2f} s after the master was killed ({errors} failed reads)")
    assert value["n"] == 99  # the replica's copy, or a reload
    master.start()  # it rejoins as a replica of the promoted node
    cluster.wait_until_ok(30)
