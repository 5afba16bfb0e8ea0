"""Fault 9: Redis forgets its Lua scripts (SCRIPT FLUSH, or a failover to a replica
that never loaded them). Each script's next call gets NOSCRIPT, reloads it, and works."""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import Any, Callable, Iterator

import pytest
import redis

from refresher import Loader, Refresher
from refresher.core.protocol.scripts import COMMIT_LOAD, EXTEND_LOCK, RELEASE_LOCK, REPLACE_VALUE
from tests.support import fault_loaders as fl
from tests.support.locks import Lock
from tests.support.servers import WorkerProcess
from tests.support.reading import Reading


# It flushes, loads and counts scripts on the one cache server; on a Cluster each node keeps
# its own (redis-py reloads on NOSCRIPT per node all the same).
pytestmark = pytest.mark.standalone_only

@pytest.fixture
def cache(redis_url: str) -> Iterator[Refresher]:
    c = Refresher(redis_url, queue="faults-" + uuid.uuid4().hex[:8])  # a queue no worker reads
    yield c
    c.close()


def sha(script: str) -> str:
    return hashlib.sha1(script.encode()).hexdigest()


def noscript_errors(r: redis.Redis) -> int:
    return int(r.info("errorstats").get("errorstat_NOSCRIPT", {}).get("count", 0))


def commit(reading: Reading, r: redis.Redis, load: Loader[..., Any]) -> None:
    assert reading.get(load, 1) == 1  # a miss: load, then commit under the lock
    assert r.get(load.keys(1).value) is not None and r.get(load.keys(1).lock) is None


def replace_by_set(reading: Reading, r: redis.Redis, load: Loader[..., Any]) -> None:
    reading.set(load, 1, 42)
    assert reading.get(load, 1) == 42


def replace_by_invalidate(reading: Reading, r: redis.Redis, load: Loader[..., Any]) -> None:
    reading.set(load, 1, 42)
    r.script_flush()
    reading.invalidate(load, 1)
    assert reading.get(load, 1) == 1


def release(reading: Reading, r: redis.Redis, load: Loader[..., Any]) -> None:
    with pytest.raises(ValueError, match="no such row"):
        reading.get(load, -1)  # the loader raises: the lock is released (and waiters told) by script
    assert r.get(load.keys(-1).lock) is None


def extend(reading: Reading, r: redis.Redis, load: Loader[..., Any]) -> None:
    lock = Lock(load.cache.sync, load.keys(1).lock, ttl_ms=60_000)
    assert lock.acquire()
    r.pexpire(lock.key, 1_000)
    r.script_flush()
    assert lock.extend()
    assert r.pttl(lock.key) > 1_000


@pytest.mark.parametrize(
    ("script", "operation"),
    [
        (COMMIT_LOAD, commit),
        (REPLACE_VALUE, replace_by_set),
        (REPLACE_VALUE, replace_by_invalidate),
        (RELEASE_LOCK, release),
        (EXTEND_LOCK, extend),
    ],
    ids=["commit", "replace-set", "replace-invalidate", "release", "extend"],
)
def test_each_script_reloads_itself_after_script_flush(
    reading: Reading, r: redis.Redis, cache: Refresher, script: str, operation: Callable[[Reading, redis.Redis, Loader[..., Any]], None]
) -> None:
    @cache.loader(ttl=60, name="faults.t" + uuid.uuid4().hex[:10])
    def load(n: int) -> int:
        if n < 0:
            raise ValueError("no such row")
        return n

    r.script_load(script)
    r.script_flush()
    assert r.script_exists(sha(script)) == [False]
    before = noscript_errors(r)
    operation(reading, r, load)
    assert noscript_errors(r) > before  # it really hit NOSCRIPT ...
    assert r.script_exists(sha(script)) == [True]  # ... and loaded the script again


def test_a_worker_refreshes_after_script_flush(
    reading: Reading, r: redis.Redis, key: str, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    """The worker's side (extend, commit) from another process, after the scripts it
    loaded earlier were flushed under it."""
    worker = spawn_worker()
    assert worker.log is not None
    reading.set(fl.steady, key, {"key": key, "call": 0})
    fl.send_refresh(fl.steady, key, enqueued_at=time.time() + 1)
    worker.log.wait_for(r"succeeded in \S+ 'written'")  # the worker has used its scripts once
    r.script_flush()
    before = noscript_errors(r)
    fl.send_refresh(fl.steady, key, enqueued_at=time.time() + 1)
    worker.log.wait_for(r"succeeded in \S+ 'written'", count=2)
    assert noscript_errors(r) > before
    assert reading.get(fl.steady, key) == {"key": key, "call": 2}
