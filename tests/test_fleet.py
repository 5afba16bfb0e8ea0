"""A fleet on a real Redis Cluster (3 masters, 3 replicas; the broker the plain
redis-server): 3 `celery -A workers worker --concurrency 2` processes and 6 reader
processes keep 1,000 hot keys with an 8 s TTL servable for 3 TTL periods, each key
refreshed at most once a period (+1), and a warm shutdown of every worker at once leaves
no lock and no pending marker behind.

About 45 s alone, 40 s in the whole suite (the session's cluster is up already). 8 s is
the shortest TTL the fleet kept up with on a 2-core machine that other test runs shared:
with 5 to 7 s (200 to 250 refreshes a second) the three workers fell 200 to 350 tasks
behind and reads missed."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import pytest
from redis.cluster import RedisCluster

from refresher import Loader, Refresher
from tests.support import fleet_loaders as fl
from tests.support.cluster import RedisClusterServers
from tests.support.fleet import leftovers, run_sweepers
from tests.support.servers import WorkerProcess, stop_gracefully

KEYS = list(range(1_000))
WORKERS = 3
READERS = 6
PERIODS = 3
SWEEP_INTERVAL = 0.5  # each reader reads its keys this often (two readers a key); the window is 1.6 s
WARM_UP = fl.TTL * (1 - fl.WINDOW) * 0.9  # spread over most of the first period, so are the refreshes


@pytest.fixture
def fleet_env(cluster: RedisClusterServers, broker_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The cache on the cluster (emptied), tasks through the plain redis-server: what the
    spawned readers inherit and the workers are given."""
    rc = RedisCluster(host="127.0.0.1", port=cluster.nodes[0].port)
    rc.flushall(target_nodes=RedisCluster.PRIMARIES)
    rc.close()
    monkeypatch.setenv("REFRESHER_REDIS_URL", cluster.url)
    monkeypatch.setenv("REFRESHER_BROKER_URL", broker_url)
    return cluster.url


@pytest.fixture
def workers(fleet_env: str, broker_url: str) -> Iterator[list[WorkerProcess]]:
    procs = [WorkerProcess(fleet_env, loaders="tests.support.fleet_loaders", concurrency=2, events=False,
                           extra_env={"REFRESHER_BROKER_URL": broker_url, "REFRESHER_QUEUE": fl.QUEUE})
             for _ in range(WORKERS)]
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(WorkerProcess.start, procs))
    yield procs
    for proc in procs:
        proc.stop()


def test_a_fleet_keeps_1000_hot_keys_servable_and_shuts_down_clean(
    cluster: RedisClusterServers, fleet_env: str, broker_url: str, workers: list[WorkerProcess]
) -> None:
    warmed_in = went = 0.0

    def warm_up() -> None:
        """Once the readers are ready: every key misses once, 50 keys at a time, spread over
        WARM_UP (4 threads, so a busy machine does not stretch it)."""
        nonlocal warmed_in, went
        cache = Refresher(fleet_env, broker_url=broker_url, queue=fl.QUEUE)
        hot = Loader(cache, fl.hot.fn, fl.hot.name, fl.hot.settings)
        started = time.monotonic()

        def chunk(i: int) -> None:
            threading.Event().wait(started + WARM_UP * i / len(KEYS) - time.monotonic())  # its turn
            hot.get_many(KEYS[i:i + 50])

        try:
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(chunk, range(0, len(KEYS), 50)))
            warmed_in = time.monotonic() - started
        finally:
            cache.close()
        assert fl.loads() == {n: 1 for n in KEYS}
        assert warmed_in < fl.TTL * (1 - fl.WINDOW), "the warm-up outlived its first keys' freshness"
        went = time.monotonic()

    reports = run_sweepers(KEYS, READERS, seconds=PERIODS * fl.TTL, interval=SWEEP_INTERVAL, before_go=warm_up)
    read_for = time.monotonic() - went
    with ThreadPoolExecutor(WORKERS) as pool:  # a warm shutdown of the whole fleet at once
        list(pool.map(stop_gracefully, [w.proc for w in workers]))
    stopped_at = time.monotonic()

    # every key stayed servable: no read missed, waited on a load or loaded inline
    pace = (f"warm-up {warmed_in:.2f} s; read {read_for:.1f} s; first misses {[r.first_miss for r in reports]}; "
            f"late sweeps {[r.late_sweeps for r in reports]} of {[r.sweeps for r in reports]}; "
            f"slowest {[round(r.slowest_sweep, 2) for r in reports]} s; reader CPU {[round(r.cpu, 1) for r in reports]} s")
    assert [e for rep in reports for e in rep.errors] == []
    assert [w for rep in reports for w in rep.wrong] == []
    stats = {key: sum(rep.stats.get(key, 0) for rep in reports) for key in ("miss", "coalesced", "waited", "load")}
    assert stats == {"miss": 0, "coalesced": 0, "waited": 0, "load": 0}, pace
    # after the warm-up, each key was loaded at most periods + 1 times (a refresh is due
    # only once a value has aged 80% of its TTL), and at least periods - 1 times: by the
    # workers, since no reader loaded anything
    assert read_for < (PERIODS + 1) * fl.TTL * (1 - fl.WINDOW), pace  # else a 5th refresh would be due
    refreshes = {n: count - 1 for n, count in fl.loads().items()}
    assert max(refreshes.values()) <= PERIODS + 1, sorted(refreshes.items(), key=lambda kv: -kv[1])[:10]
    assert min(refreshes.values()) >= PERIODS - 1, sorted(refreshes.items(), key=lambda kv: kv[1])[:10]
    # the workers left warmly (SIGTERM: finish what is running, then exit 0)
    for worker in workers:
        assert worker.proc is not None and worker.proc.returncode == 0
        assert worker.log is not None and worker.log.count(r"refresher\.refresh\S*\[\S+\] succeeded in") > 0
    # ... and every load in flight finished and freed its lock; the pending markers
    # still there belong to tasks left queued, and lapse within their TTL
    namespace = fl.cache.namespace
    assert leftovers(cluster, f"{namespace}:lock{{fleet.hot:*}}") == {}
    markers = markers_left = leftovers(cluster, f"{namespace}:pending{{fleet.hot:*}}")
    marker_ttl_ms = fl.hot.settings.lock_ttl_ms + int(fl.cache.publisher.timeout * 1000)
    assert all(0 < pttl <= marker_ttl_ms for pttl in markers.values()), markers
    while markers:
        assert time.monotonic() - stopped_at < marker_ttl_ms / 1000 + 1, markers
        time.sleep(0.05)  # polling Redis for the markers' own expiry
        markers = leftovers(cluster, f"{namespace}:pending{{fleet.hot:*}}")
    print(f"\n{pace}\n{sum(r.reads for r in reports)} reads, {sum(refreshes.values())} refreshes, "
          f"{min(refreshes.values())}-{max(refreshes.values())} a key, {len(markers_left)} markers at shutdown")
