"""Fault: a loader that hangs. Each refresh task carries a soft and a hard time limit from
the loader's max_load_time (2 s and 3 s here). The prefork pool enforces them: the soft
one raises in the loader, the refresh fails and the key backs off, and the worker stays
live; a loader that swallows it is ended by the hard one, which frees its pool process. The threads pool cannot stop a thread: the watchdog stops extending the lock after
max_load_time and backs the key off, and the worker reports itself not live once the
task passes its hard limit (while it still answers `inspect ping`), so a liveness probe
restarts it; live again once it ends. It says at start that its pool cannot stop a task.
And a worker is ready only while loaders are registered and its cache answers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest
import redis

from refresher.core.lock import BACKOFF
from tests.support import fault_loaders as fl
from tests.support.ageing import expire_in
from tests.support.keyevents import KeyEvents
from tests.support.servers import ROOT, RedisServer, WorkerProcess
from tests.support.webapps import WRITTEN

LIVE = "refresher: worker ready and live"
STUCK = r"refresher: worker not live: stuck in loaders: refresher\.refresh\[\S+\] for \d+s \(limit 3s\)"


UNBOUNDED = "the thread pool cannot stop a task at its time limit"


def probe(kind: str, env: dict[str, str]) -> int:
    """The Kubernetes exec probe, as a pod runs it (docs/celery.md)."""
    return subprocess.run([sys.executable, "-m", "refresher.worker.probe", kind], cwd=ROOT, env={**os.environ, **env},
                          capture_output=True, timeout=60).returncode


@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_a_hung_refresh_is_stopped_on_prefork_and_fenced_on_threads(
    pool: str, r: redis.Redis, key: str, spawn_worker: Callable[..., WorkerProcess], tmp_path: Path,
) -> None:
    loader, keys = fl.hung, fl.hung.keys(key)
    files = {"REFRESHER_LIVE_FILE": tmp_path / "live", "REFRESHER_READY_FILE": tmp_path / "ready"}
    env = {**{k: str(v) for k, v in files.items()}, "REFRESHER_HEALTH_INTERVAL": "0.2"}
    worker = spawn_worker(pool=pool, extra_env=env)
    assert worker.log is not None
    worker.log.wait_for(LIVE)
    assert (probe("ready", env), probe("live", env)) == (0, 0)
    assert worker.log.count(UNBOUNDED) == (pool == "threads")  # said at start, before "ready."

    loader.set(key, {"key": key, "call": 0})
    expire_in(r, keys, 20_000)  # in its 30 s window
    events = KeyEvents(r, keys.pending, flags="K$gx")
    try:
        fl.hold(key)  # the load waits for the test (20 s at most): hung, as far as the limits go
        assert loader.get(key) == {"key": key, "call": 0}  # served; the refresh is asked for
        call = fl.entered(key)
        if pool == "prefork":
            worker.log.wait_for(r"refresh failed: SoftTimeLimitExceeded")
            assert r.get(keys.pending) == BACKOFF
            assert files["REFRESHER_LIVE_FILE"].exists()  # nothing stuck: the child is free again
            assert worker.log.count("not live") == 0
        else:
            assert events.wait(keys.pending, "set", count=2, timeout=10), events.seen  # the reader's marker, then ...
            assert r.get(keys.pending) == BACKOFF  # ... the watchdog's give-up: no new attempt for 2 s
            worker.log.wait_for(STUCK)
            assert (probe("ready", env), probe("live", env)) == (0, 1)
            assert worker.ping(timeout=5)  # what Celery's own check says of it
            fl.release(key, call)
            worker.log.wait_for(r"'lost_lock'")  # its late write is refused
            worker.log.wait_for(LIVE, count=2)
            assert files["REFRESHER_LIVE_FILE"].exists()
    finally:
        events.close()
    assert loader.get(key) == {"key": key, "call": 0}  # the old value, still served


def test_a_loader_that_swallows_the_soft_limit_is_ended_by_the_hard_one_on_prefork(
    r: redis.Redis, key: str, spawn_worker: Callable[..., WorkerProcess],
) -> None:
    """The one pool process is freed at the hard limit (the child killed and replaced), so
    the next refresh runs; without a hard limit it would wait for the stuck one (20 s)."""
    worker = spawn_worker(pool="prefork")
    assert worker.log is not None
    for loader in (fl.stubborn, fl.steady):
        loader.set(key, {"key": key, "call": 0})
        expire_in(r, loader.keys(key), 20_000)  # in its 30 s window
    fl.hold(key)
    assert fl.stubborn.get(key) == {"key": key, "call": 0}  # served; the refresh is asked for
    fl.entered(key)
    assert fl.steady.get(key) == {"key": key, "call": 0}  # its refresh waits for the one process
    worker.log.wait_for(r"Hard time limit \(2(\.0)?s\) exceeded for refresher\.refresh\[", timeout=10)
    worker.log.wait_for(WRITTEN, timeout=10)
    assert fl.steady.get(key) == {"key": key, "call": 1}
    assert fl.stubborn.get(key) == {"key": key, "call": 0}  # the old value, still served


def test_a_worker_is_ready_only_with_loaders_registered_and_its_cache_answering(
    spawn_worker: Callable[..., WorkerProcess], tmp_path: Path, own_redis: RedisServer, redis_url: str,
) -> None:
    env = {"REFRESHER_LIVE_FILE": str(tmp_path / "live"), "REFRESHER_READY_FILE": str(tmp_path / "ready"),
           "REFRESHER_HEALTH_INTERVAL": "0.2",
           # the plain redis-server: with the cache on a Cluster (make test's second pass) it is the broker
           "REFRESHER_BROKER_URL": os.environ.get("REFRESHER_BROKER_URL") or redis_url}
    empty = spawn_worker(loaders="", extra_env=env)
    assert empty.log is not None
    empty.log.wait_for("refresher: worker not ready: no loaders registered")
    assert (probe("ready", env), probe("live", env)) == (1, 0)
    empty.stop()

    worker = spawn_worker(own_redis.url, extra_env=env)  # the fault loaders, their cache on own_redis
    assert worker.log is not None
    worker.log.wait_for(LIVE)
    assert probe("ready", env) == 0
    own_redis.stop()
    worker.log.wait_for(r"refresher: worker not ready: the cache at redis://127\.0\.0\.1:\d+/0 does not answer")
    assert (probe("ready", env), probe("live", env)) == (1, 0)
    own_redis.start()
    worker.log.wait_for(LIVE, count=2)
    assert probe("ready", env) == 0
