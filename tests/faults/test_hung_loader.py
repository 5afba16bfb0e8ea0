"""Fault: a loader that hangs. Each refresh task carries a soft and a hard time limit from
the loader's max_load_time (2 s and 3 s here). The prefork pool enforces them: the soft
one raises in the loader, the refresh fails and the key backs off, and the worker stays
live. The threads pool cannot stop a thread: the watchdog stops extending the lock after
max_load_time and backs the key off, and the worker reports itself not live once the
task passes its hard limit, so a liveness probe restarts it; live again once it ends."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
import redis

from refresher.core.lock import BACKOFF
from tests.support import fault_loaders as fl
from tests.support.ageing import expire_in
from tests.support.keyevents import KeyEvents
from tests.support.servers import WorkerProcess

LIVE = "refresher: worker ready and live"
STUCK = r"refresher: worker not live: stuck in loaders: refresher\.refresh\[\S+\] for \d+s \(limit 3s\)"


@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_a_hung_refresh_is_stopped_on_prefork_and_fenced_on_threads(
    pool: str, r: redis.Redis, key: str, spawn_worker: Callable[..., WorkerProcess], tmp_path: Path,
) -> None:
    loader, keys = fl.hung, fl.hung.keys(key)
    files = {"REFRESHER_LIVE_FILE": tmp_path / "live", "REFRESHER_READY_FILE": tmp_path / "ready"}
    worker = spawn_worker(pool=pool, extra_env={**{k: str(v) for k, v in files.items()},
                                                "REFRESHER_HEALTH_INTERVAL": "0.2"})
    assert worker.log is not None
    worker.log.wait_for(LIVE)
    assert all(path.exists() for path in files.values())

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
            assert not files["REFRESHER_LIVE_FILE"].exists()
            assert files["REFRESHER_READY_FILE"].exists()
            fl.release(key, call)
            worker.log.wait_for(r"'lost_lock'")  # its late write is refused
            worker.log.wait_for(LIVE, count=2)
            assert files["REFRESHER_LIVE_FILE"].exists()
    finally:
        events.close()
    assert loader.get(key) == {"key": key, "call": 0}  # the old value, still served
