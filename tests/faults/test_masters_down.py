"""The cache Redis down on a Redis Cluster or behind Sentinel (issue 24), with a near cache and
stale_if_down: a frozen Cluster master opens its own breaker only, so its keys answer at once
(a kept copy, the loader with fail_open, else CacheUnavailable) while the other masters' are
read from Redis; a Sentinel master killed and failed over is bridged by the kept copies, and
once tracking is on again on the new master nothing kept is served."""

from __future__ import annotations

import math
import signal
import time
import uuid
from typing import Iterator

import pytest
import redis

from refresher import CacheUnavailable, Loader, Refresher
from tests.faults.test_cache_down import timed
from tests.faults.test_stale_if_down import COOLDOWN, WARM, version_of
from tests.support.cluster import RedisClusterServers
from tests.support.reading import Reading
from tests.support.sentinel import SentinelServers
from tests.support.waiting import until

pytestmark = pytest.mark.standalone_only  # each test starts and breaks servers of its own
SOCKET_TIMEOUT = 2.0
AT_ONCE = SOCKET_TIMEOUT / 4  # an answer that waited on no socket, with room for a loaded machine (0.3 s stalls seen)


@pytest.fixture(scope="module")
def frozen_proof_cluster() -> Iterator[RedisClusterServers]:
    """Three masters without replicas, set so a frozen master never fails the cluster: one
    for the module (a cluster takes 2 s to form), since no test here changes its layout."""
    servers = RedisClusterServers(masters=3, replicas=0)
    servers.start()
    for node in servers.nodes:
        with redis.Redis(host="127.0.0.1", port=node.port) as admin:
            admin.config_set("cluster-node-timeout", 60_000)
            admin.config_set("cluster-require-full-coverage", "no")
    yield servers
    servers.stop()


@pytest.fixture
def cluster(frozen_proof_cluster: RedisClusterServers) -> Iterator[RedisClusterServers]:
    """The module's cluster, emptied; thawed after the test whatever it left frozen."""
    for node in frozen_proof_cluster.nodes:
        with redis.Redis(host="127.0.0.1", port=node.port) as admin:
            admin.flushall()
    yield frozen_proof_cluster
    for node in frozen_proof_cluster.nodes:
        if node.proc is not None:
            node.proc.send_signal(signal.SIGCONT)


def test_a_frozen_cluster_master_opens_its_own_breaker_and_its_keys_answer_at_once(
    reading: Reading, cluster: RedisClusterServers, broker_url: str
) -> None:
    cache = Refresher(cluster.url, broker_url=broker_url, socket_timeout=SOCKET_TIMEOUT, breaker_cooldown=COOLDOWN,
                      near_cache=1000)
    try:
        name = "faults.masters" + uuid.uuid4().hex[:8]
        load = version_of(cache, name, stale_if_down=30)
        direct = version_of(cache, name + ".open", fail_open=True)
        assert cache.tracker.wait_live(5)
        for n in WARM:
            assert [reading.get(load, n) for _ in range(3)] == [{"n": n, "v": 1}] * 3
        # Not the master of these loaders' epoch keys: while tracking is down every read fetches
        # its loader's, so that master's outage takes every key of the loader down (`judged`'s).
        epochs_at = {cluster.master_of(cache.epochs.loader_key(loader.name)).port for loader in (load, direct)}
        frozen = next(m for m in (cluster.master_of(load.keys(n).value) for n in WARM) if m.port not in epochs_at)
        on_frozen = [n for n in WARM if cluster.master_of(load.keys(n).value) is frozen]
        elsewhere = [n for n in WARM if n not in on_frozen]
        never = next(n for n in range(1000, 2000) if cluster.master_of(load.keys(n).value) is frozen)
        judged = version_of(cache, next(f"{name}.j{i}" for i in range(100)
                                        if cluster.master_of(cache.epochs.loader_key(f"{name}.j{i}")) is frozen),
                            stale_if_down=30)
        assert [reading.get_many(judged, WARM) for _ in range(3)] == [[{"n": n, "v": 1} for n in WARM]] * 3
        assert frozen.proc is not None and elsewhere
        frozen.proc.send_signal(signal.SIGSTOP)
        frozen_at = time.monotonic()
        master = f"127.0.0.1:{frozen.port}"
        until(lambda: cache.breaker.open, "the tracker's PING found the master frozen", 3)
        detected = time.monotonic() - frozen_at
        opened = cache.breaker.node(master)
        assert opened is not None and opened.open and cache.breaker.held  # that master's, held by the tracker
        latencies: dict[str, list[float]] = {"frozen": [], "elsewhere": []}
        while time.monotonic() - frozen_at < 2.5:
            for n in WARM:
                started = time.perf_counter()
                assert reading.get(load, n) == {"n": n, "v": 1}  # a kept copy, or from its master: 0 errors
                latencies["frozen" if n in on_frozen else "elsewhere"].append(time.perf_counter() - started)
        error, seconds = timed(lambda: reading.get(load, never))
        assert isinstance(error, CacheUnavailable) and seconds < AT_ONCE, (error, seconds)
        error, seconds = timed(lambda: reading.get(direct, never))  # fail_open: the loader, at once
        assert error is None and seconds < AT_ONCE, (error, seconds)
        assert reading.get_many(load, [on_frozen[0], elsewhere[0]]) == [{"n": n, "v": 1} for n in (on_frozen[0],
                                                                                                   elsewhere[0])]
        assert all(not cache.breaker.of(load.keys(n).value).open for n in elsewhere)
        for n in WARM:  # its keys on every master: the kept copies, at once
            error, seconds = timed(lambda: reading.get(judged, n))
            assert error is None and seconds < AT_ONCE, (n, error, seconds)
        assert cache.stats["served_while_down"] == len(latencies["frozen"]) + 1 + len(WARM)
        frozen.proc.send_signal(signal.SIGCONT)  # (the fixture's teardown thaws it too, should this fail)
        thawed_at = time.monotonic()
        until(lambda: not cache.breaker.open and cache.tracker.live, "the reconnect never closed the breaker", 5)
        recovered = time.monotonic() - thawed_at
        other = Refresher(cluster.url, broker_url=broker_url)
        try:
            other.loader(ttl=60, name=load.name)(load.fn).set(on_frozen[0], {"n": on_frozen[0], "v": 2})
        finally:
            other.close()
        until(lambda: reading.get(load, on_frozen[0]) == {"n": on_frozen[0], "v": 2}, "the new value", 2)
        worst = {where: max(seconds) * 1000 for where, seconds in latencies.items()}
        p99 = {where: sorted(s)[int(len(s) * 0.99)] * 1000 for where, s in latencies.items()}
        print(f"[{reading}] master frozen: breaker open after {detected * 1000:.0f} ms; reads until 2.5 s: "
              f"its keys {len(latencies['frozen'])} (p99 {p99['frozen']:.2f} ms, max {worst['frozen']:.0f} ms), "
              f"other keys {len(latencies['elsewhere'])} (p99 {p99['elsewhere']:.2f} ms); closed "
              f"{recovered * 1000:.0f} ms after the thaw")
        assert p99["frozen"] < 5 and p99["elsewhere"] < 50, p99  # ms
    finally:
        cache.close()


def test_a_sentinel_failover_is_bridged_by_kept_copies_and_coherent_after(
    reading: Reading, redis_url: str
) -> None:
    sentinel = SentinelServers()
    sentinel.start()
    cache = Refresher(sentinel.url, broker_url=redis_url, socket_timeout=SOCKET_TIMEOUT, breaker_cooldown=COOLDOWN,
                      near_cache=1000)
    try:
        load = version_of(cache, "faults.failover" + uuid.uuid4().hex[:8], stale_if_down=30)
        assert cache.tracker.wait_live(5)
        for n in WARM:
            assert [reading.get(load, n) for _ in range(3)] == [{"n": n, "v": 1}] * 3
        sentinel.wait_until_replicated()
        sentinel.master.stop(signal.SIGKILL)
        killed_at = time.monotonic()
        until(lambda: not cache.tracker.live, "the tracker never saw its connection closed", 2)
        latencies: list[float] = []
        served_down: list[int] = []
        answered = math.inf  # when a read was first answered by the new master
        while not cache.tracker.live:  # until tracking is on again, on the promoted replica
            assert time.monotonic() - killed_at < 30, "tracking never came back on the new master"
            for n in WARM:
                before = cache.stats["served_while_down"]
                started = time.perf_counter()
                assert reading.get(load, n) == {"n": n, "v": 1}  # 0 errors through the failover
                latencies.append(time.perf_counter() - started)
                served_down.append(cache.stats["served_while_down"] - before)
                if served_down[-1] == 0 and answered == math.inf and not cache.tracker.live:
                    answered = time.monotonic() - killed_at
        back = time.monotonic() - killed_at
        assert sum(served_down) > 0 and cache.near is not None
        assert not cache.breaker.open  # killed, not frozen: no read waited on a socket
        # Tracking is on again: what was kept is gone, and a write made elsewhere is seen.
        other = Refresher(sentinel.url, broker_url=redis_url)
        try:
            other.loader(ttl=60, name=load.name)(load.fn).set(0, {"n": 0, "v": 2})
        finally:
            other.close()
        until(lambda: reading.get(load, 0) == {"n": 0, "v": 2}, "the write on the new master", 2)
        assert all(reading.get(load, n) == {"n": n, "v": 1} for n in WARM[1:])
        p99 = sorted(latencies)[int(len(latencies) * 0.99)]
        print(f"[{reading}] master killed: reads answered by the new master after {answered:.2f} s, tracking "
              f"on again on it after {back:.2f} s; "
              f"{len(latencies)} reads meanwhile, {sum(served_down)} served while down, 0 errors, "
              f"p99 {p99 * 1000:.2f} ms, max {max(latencies) * 1000:.0f} ms")
        assert p99 < AT_ONCE, p99
        assert back - answered < 4 * COOLDOWN, (answered, back)  # the reconnect is tried every cool-down
    finally:
        cache.close()
        sentinel.stop()


def test_a_read_that_timed_out_on_a_cluster_master_opens_its_breaker_and_a_probe_closes_it(
    reading: Reading, cluster: RedisClusterServers, broker_url: str
) -> None:
    """Without tracking (a user that may not turn it on: no PING finds the master frozen),
    the first read of the frozen master's keys waits its timeout and opens that master's
    breaker; until the thaw its keys answer at once, the others' are read; after it the
    first read past the cool-down gets through and closes it."""
    for node in cluster.nodes:
        with redis.Redis(host="127.0.0.1", port=node.port) as admin:
            admin.acl_setuser("app", enabled=True, passwords=["+secret"], keys=["~*"], channels=["*"],
                              commands=["+@all", "-client|tracking"])
    url = cluster.url.replace("://", "://app:secret@", 1)
    cache = Refresher(url, broker_url=broker_url, socket_timeout=SOCKET_TIMEOUT, breaker_cooldown=COOLDOWN)
    try:
        name = "faults.timedout" + uuid.uuid4().hex[:8]
        load, direct = version_of(cache, name), version_of(cache, name + ".open", fail_open=True)
        assert [reading.get(load, n) for n in WARM] == [{"n": n, "v": 1} for n in WARM]
        epochs_at = {cluster.master_of(cache.epochs.loader_key(loader.name)).port for loader in (load, direct)}
        frozen = next(m for m in (cluster.master_of(load.keys(n).value) for n in WARM) if m.port not in epochs_at)
        on_frozen = [n for n in WARM if cluster.master_of(load.keys(n).value) is frozen]
        elsewhere = [n for n in WARM if n not in on_frozen]
        assert frozen.proc is not None and len(on_frozen) >= 2 and not cache.tracker.live
        frozen.proc.send_signal(signal.SIGSTOP)
        error, waited = timed(lambda: reading.get(load, on_frozen[0]))
        assert isinstance(error, CacheUnavailable) and waited >= 0.9 * SOCKET_TIMEOUT, (error, waited)
        breaker = cache.breaker.of(load.keys(on_frozen[0]).value)
        assert breaker.open  # by the read (or by the tracker, trying to connect to every master meanwhile)
        error, seconds = timed(lambda: reading.get(load, on_frozen[1]))
        assert isinstance(error, CacheUnavailable) and seconds < AT_ONCE, (error, seconds)
        answers: list[object] = []
        error, seconds = timed(lambda: answers.append(reading.get_many(direct, [on_frozen[1], elsewhere[0]])))
        assert error is None and seconds < AT_ONCE and len(answers) == 1, (error, seconds)
        for n in elsewhere:
            error, seconds = timed(lambda: reading.get(load, n))
            assert error is None and seconds < AT_ONCE, (n, error, seconds)
        assert not any(cache.breaker.of(load.keys(n).value).open for n in elsewhere)
        frozen.proc.send_signal(signal.SIGCONT)
        thawed_at = time.monotonic()
        until(lambda: _answers(reading, load, on_frozen[1]), "no probe got through after the thaw", 5)
        assert not breaker.open
        print(f"[{reading}] no tracking: the first read of the frozen master waited {waited * 1000:.0f} ms, the next "
              f"answered in {seconds * 1000:.2f} ms; closed by a probe {(time.monotonic() - thawed_at) * 1000:.0f} ms "
              "after the thaw")
    finally:
        cache.close()


def _answers(reading: Reading, load: Loader[..., dict[str, int]], n: int) -> bool:
    try:
        return bool(reading.get(load, n) == {"n": n, "v": 1})
    except CacheUnavailable:
        return False
