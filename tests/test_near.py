"""The near cache against a real redis-server: coherence across processes and threads,
the flush on a lost or frozen invalidation connection, bounds, and shared values."""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
import uuid
from typing import Any, Iterator

import pytest
import redis

from refresher import Loader, Refresher
from refresher.io.tracking import CLIENT_NAME, DEAD_AFTER, PING_EVERY
from tests.support.reading import Reading
from tests.support.readers import CTX
from tests.support.servers import RedisServer, free_port

pytestmark = pytest.mark.standalone_only
LAG_BOUND = 0.05  # seconds from a write's return to every reader's copy being gone


@dataclasses.dataclass(frozen=True)
class Profile:
    id: int
    tags: tuple[str, ...]


@pytest.fixture
def near(redis_url: str) -> Iterator[Refresher]:
    cache = Refresher(redis_url, queue="near-" + uuid.uuid4().hex[:8], near_cache=100)
    assert cache.near is not None and cache.near.tracker.wait_live(5)
    yield cache
    cache.close()


def numbered(cache: Refresher, **options: Any) -> tuple[Loader[..., Any], list[int]]:
    calls: list[int] = []

    @cache.loader(ttl=60, name="t." + uuid.uuid4().hex[:10], **options)
    def load(n: int) -> dict[str, Any]:
        calls.append(n)
        return {"n": n, "tags": ["a"]}

    return load, calls


def test_a_second_read_is_served_from_memory(reading: Reading, near: Refresher, redis_url: str) -> None:
    load, calls = numbered(near)
    assert reading.get(load, 1) == {"n": 1, "tags": ["a"]}
    gets = _calls(redis_url, "get")
    assert [reading.get(load, 1) for _ in range(5)] == [{"n": 1, "tags": ["a"]}] * 5
    assert calls == [1]
    assert _calls(redis_url, "get") == gets + 1  # the first read after the load; then memory
    assert near.stats["near_hit"] == 4


def test_a_write_by_another_client_is_seen_by_the_next_read(reading: Reading, near: Refresher, redis_url: str) -> None:
    """Redis sends the invalidation before the writer's reply, and a read applies what has
    arrived before it looks at memory: no lag at all within one machine."""
    load, _ = numbered(near)
    writer = Refresher(redis_url, queue=near.queue)
    twin: Loader[..., Any] = writer.loader(ttl=60, name=load.name + "w")(load.fn)
    twin.call = load.call  # the same keys
    reading.get(load, 7)
    for n in range(200):
        twin.set(7, {"n": n, "tags": []})
        assert reading.get(load, 7) == {"n": n, "tags": []}
    twin.invalidate(7)
    assert reading.get(load, 7) == {"n": 7, "tags": ["a"]}
    writer.close()


def test_a_writer_process_never_leaves_an_old_copy_behind(redis_url: str) -> None:
    """Process A sets and invalidates while this process hammers the key: a read that
    starts LAG_BOUND after one of A's writes returned never sees an older number."""
    from tests.support import near_loaders

    key = uuid.uuid4().hex[:8]
    assert near_loaders.cache.near is not None and near_loaders.cache.near.tracker.wait_live(5)
    near_loaders.counter.get(key)
    ready, go = CTX.Event(), CTX.Event()
    writer = CTX.Process(target=near_loaders.write, args=(key, 300, ready, go))
    writer.start()
    assert ready.wait(30)
    reads: list[tuple[float, int]] = []
    go.set()
    while writer.is_alive() and len(reads) < 2_000_000:
        started = time.time()
        reads.append((started, near_loaders.counter.get(key)["n"]))
    writer.join(10)
    assert writer.exitcode == 0
    written = [line.split() for line in near_loaders.control.lrange(f"near:written:{key}", 0, -1)]
    assert len(written) == 300
    late = [(t, seen, n) for n, at in ((int(n), float(at)) for n, at in written)
            for t, seen in reads if t > at + LAG_BOUND and seen < n]
    assert late == []
    assert near_loaders.cache.stats["near_hit"] > len(reads) / 2  # it was the near cache that served


def test_a_killed_invalidation_connection_bypasses_and_drops_until_tracking_is_back(near: Refresher, redis_url: str) -> None:
    load, _ = numbered(near)
    load.get(1)
    load.get(1)  # the load's own commit evicted its copy: this read keeps one
    assert near.near is not None and len(near.near) == 1
    admin = redis.Redis.from_url(redis_url)
    killed = sum(admin.client_kill_filter(_id=int(c["id"])) for c in admin.client_list() if c["name"] == CLIENT_NAME)
    assert killed >= 1  # this test's, and any other near cache's on this server
    before = near.stats["hit"]
    load.get(1)  # the read notices the closed connection: memory is bypassed, Redis serves
    assert near.stats["hit"] == before + 1  # the copy is not served: kept at most, until the reconnect
    assert near.near.tracker.wait_live(5)  # re-established by the tracking thread ...
    assert len(near.near) == 0  # ... which dropped the copy kept through the outage first
    load.get(1)
    load.get(1)
    assert near.stats["near_hit"] == 1
    admin.close()


def test_a_restarted_redis_flushes_the_near_cache_and_tracking_resumes() -> None:
    server = RedisServer(free_port())
    server.start()
    cache = Refresher(server.url, queue="near-restart", near_cache=100)
    try:
        load, calls = numbered(cache)
        assert cache.near is not None and cache.near.tracker.wait_live(5)
        load.get(3)
        load.get(3)
        assert len(cache.near) == 1
        server.restart()  # an empty Redis: nothing it held before may be served from memory
        load.get(3)  # the read sees the closed connection, flushes, and goes to Redis
        assert calls == [3, 3]
        assert cache.near.tracker.wait_live(10)
        load.get(3)  # from Redis, kept
        load.get(3)  # from memory
        assert cache.stats["near_hit"] == 1
    finally:
        cache.close()
        server.stop()


def test_a_frozen_redis_is_detected_within_a_second() -> None:
    server = RedisServer(free_port())
    server.start()
    assert server.proc is not None
    cache = Refresher(server.url, queue="near-frozen", near_cache=100, socket_timeout=0.3)
    try:
        load, _ = numbered(cache)
        assert cache.near is not None and cache.near.tracker.wait_live(5)
        load.get(4)
        load.get(4)
        assert cache.near.lookup(load.keys(4).value) is not None
        os.kill(server.proc.pid, signal.SIGSTOP)
        frozen_at = time.monotonic()
        while cache.near.tracker.sync() and time.monotonic() - frozen_at < 5:
            time.sleep(0.01)
        detected = time.monotonic() - frozen_at
        assert detected < 1.0, detected
        assert PING_EVERY + DEAD_AFTER < 1.0
        with pytest.raises(Exception):
            load.get(4)  # as without a near cache: the frozen Redis times the read out
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
        cache.close()
        server.stop()


def test_flushall_empties_every_near_cache(near: Refresher, redis_url: str) -> None:
    load, calls = numbered(near)
    for n in range(5):
        load.get(n)
        load.get(n)
    assert near.near is not None and len(near.near) == 5
    other = redis.Redis.from_url(redis_url)
    other.flushall()
    other.ping()  # the flush's push is written in the FLUSHALL's turn: in the socket once this is back
    other.close()
    load.get(0)
    assert calls == [0, 1, 2, 3, 4, 0]


def test_a_caller_cannot_change_what_the_next_reader_gets(reading: Reading, near: Refresher) -> None:
    load, _ = numbered(near)
    reading.get(load, 1)
    mine = reading.get(load, 1)
    mine["n"] = 999
    mine["tags"].append("mine")
    assert reading.get(load, 1) == {"n": 1, "tags": ["a"]}


def test_frozen_values_are_shared_not_decoded_again(reading: Reading, near: Refresher) -> None:
    @near.loader(ttl=60, name="t." + uuid.uuid4().hex[:10])
    def profile(n: int) -> Profile:
        return Profile(n, ("x", "y"))

    reading.get(profile, 1)
    first = reading.get(profile, 1)
    assert first == Profile(1, ("x", "y"))
    assert reading.get(profile, 1) is first


def test_entries_are_bounded_by_count_and_by_bytes(redis_url: str) -> None:
    cache = Refresher(redis_url, queue="near-bounds", near_cache=10, near_cache_bytes=20_000)
    try:
        load, _ = numbered(cache)
        assert cache.near is not None and cache.near.tracker.wait_live(5)
        for n in range(25):
            load.get(n)
            load.get(n)
        assert len(cache.near) == 10

        @cache.loader(ttl=60, name="t." + uuid.uuid4().hex[:10])
        def big(n: int) -> str:
            return "x" * 5_000

        for n in range(10):
            big.get(n)
            big.get(n)
        assert cache.near.size_bytes <= 20_000
    finally:
        cache.close()


def test_a_loader_can_opt_out(reading: Reading, near: Refresher) -> None:
    load, _ = numbered(near, near=False)
    for _ in range(3):
        reading.get(load, 1)
    assert near.stats["near_hit"] == 0 and near.stats["hit"] == 2


def test_a_value_in_its_window_asks_for_one_refresh(reading: Reading, near: Refresher) -> None:
    @near.loader(ttl=2, refresh_window=0.9, name="t." + uuid.uuid4().hex[:10])
    def soon(n: int) -> int:
        return n

    reading.get(soon, 1)
    deadline = time.monotonic() + 5
    while near.stats["refresh_asked"] == 0 and time.monotonic() < deadline:
        reading.get(soon, 1)  # in the window within 0.2 s
    for _ in range(50):
        assert reading.get(soon, 1) == 1
    assert near.stats["refresh_asked"] == 1


def test_thirty_two_threads_share_one_near_cache_while_keys_are_rewritten(near: Refresher, redis_url: str) -> None:
    load, _ = numbered(near)
    writer = Refresher(redis_url, queue=near.queue)
    twin: Loader[..., Any] = writer.loader(ttl=60, name=load.name + "w")(load.fn)
    twin.call = load.call
    written = [0] * 4  # per key: the last number whose set has returned
    stop = threading.Event()
    errors: list[str] = []

    def read() -> None:
        while not stop.is_set():
            key = int(time.perf_counter_ns()) % 4
            floor = written[key]
            try:
                seen = load.get(key)["n"]
            except Exception as exc:  # noqa: BLE001  any error fails the test below
                errors.append(repr(exc))
                return
            if seen < floor:
                errors.append(f"key {key}: read {seen} after {floor} was written")

    threads = [threading.Thread(target=read) for _ in range(32)]
    for thread in threads:
        thread.start()
    for n in range(4, 400):
        twin.set(n % 4, {"n": n, "tags": []})
        written[n % 4] = n
    stop.set()
    for thread in threads:
        thread.join(10)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert near.stats["near_hit"] > 0
    writer.close()


def test_threads_missing_one_key_share_one_refill(near: Refresher, redis_url: str) -> None:
    """After each write, the first thread to miss reads Redis; the others wait for it and
    are served from memory: about one GET per write per process, not one per thread."""
    load, _ = numbered(near)
    writer = Refresher(redis_url, queue=near.queue)
    twin: Loader[..., Any] = writer.loader(ttl=60, name=load.name + "w")(load.fn)
    twin.call = load.call
    twin.set(1, {"n": 0, "tags": []})
    latest = [0]
    stop = threading.Event()
    seen: list[int] = []

    def read() -> None:
        while not stop.is_set():
            seen.append(load.get(1)["n"])

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    gets = _calls(redis_url, "get")
    writes = 20
    for n in range(1, writes + 1):
        twin.set(1, {"n": n, "tags": []})
        latest[0] = n
        while not seen or seen[-1] != n:  # a reader has the new value
            time.sleep(0.001)
    stop.set()
    for thread in threads:
        thread.join(10)
    # 8 threads: a GET each per write without sharing. A waiter woken just as the next
    # write lands reads Redis itself, so a few writes cost two or three.
    assert _calls(redis_url, "get") - gets <= 3 * writes
    writer.close()


def _calls(redis_url: str, command: str) -> int:
    stats = redis.Redis.from_url(redis_url).info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


def test_get_many_serves_from_memory_and_asks_redis_for_the_rest(reading: Reading, near: Refresher, redis_url: str) -> None:
    load, calls = numbered(near)
    reading.get_many(load, [1, 2, 3])  # loaded
    reading.get_many(load, [1, 2])  # from Redis, kept
    mgets = _calls(redis_url, "mget")
    assert reading.get_many(load, [1, 2, 3]) == [{"n": n, "tags": ["a"]} for n in (1, 2, 3)]
    assert _calls(redis_url, "mget") == mgets + 1  # for 3 alone
    assert reading.get_many(load, [3, 2, 1]) == [{"n": n, "tags": ["a"]} for n in (3, 2, 1)]
    assert _calls(redis_url, "mget") == mgets + 1
    assert calls == [1, 2, 3] and near.stats["near_hit"] == 5
