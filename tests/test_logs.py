"""The worker's log, as a person and a log shipper read it: one INFO line per refresh
outcome naming the loader and the key, the exception type of a failure, and with
REFRESHER_LOG_FORMAT=json one JSON object a line with those as fields; the tracker's line
names what it tracks."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any, Iterator

import pytest
import redis

from refresher import Refresher
from refresher.io.tracking_start import FETCHES_PER_SECOND
from tests.conftest import TaskLog
from tests.support import loaders
from tests.support.ageing import into_window
from tests.support.servers import WorkerProcess
from tests.support.waiting import until
from tests.test_worker import make_loader, send


@pytest.fixture
def cache(redis_url: str) -> Iterator[Refresher]:
    c = Refresher(redis_url)
    yield c
    c.close()


def test_one_info_line_per_refresh_outcome_naming_loader_and_key(
    cache: Refresher, r: redis.Redis, tasks_done: TaskLog, worker: object, caplog: pytest.LogCaptureFixture
) -> None:
    good, _ = make_loader(cache, delay=0.3)
    bad, _ = make_loader(cache, fail=True, lock_ttl=5)  # backs off for 5 s after a failure
    good.get(1)
    bad.get(2)
    good_seen = into_window(r, good.keys(1)).version
    bad_seen = into_window(r, bad.keys(2)).version
    with caplog.at_level(logging.INFO, logger="refresher"):
        send(cache, good, 1, enqueued_at=time.time(), seen=good_seen)
        send(cache, good, 1, enqueued_at=time.time(), seen=good_seen)  # while the first loads
        tasks_done.wait(2)
        send(cache, good, 1, enqueued_at=time.time(), seen=good_seen)  # redelivered after the write
        send(cache, bad, 2, enqueued_at=time.time(), seen=bad_seen)
        tasks_done.wait(4)
        send(cache, bad, 2, enqueued_at=time.time(), seen=bad_seen)  # inside the back-off
        tasks_done.wait(5)
    records = [rec for rec in caplog.records if rec.name == "refresher"]
    for rec in records:
        key = rec.__dict__["key"]
        assert rec.getMessage().startswith(f"refresher: loader={rec.__dict__['loader']} key={key} "), rec.getMessage()
    outcomes = {(rec.__dict__["loader"], rec.__dict__["key"], rec.__dict__["outcome"])
                for rec in records if rec.levelno == logging.INFO and "outcome" in rec.__dict__}
    assert sorted(outcomes) == sorted([
        (good.name, good.keys(1).value, "written"), (good.name, good.keys(1).value, "deduplicated"),
        (good.name, good.keys(1).value, "fresh"),
        (bad.name, bad.keys(2).value, "failed"), (bad.name, bad.keys(2).value, "backing_off"),
    ])
    assert len([rec for rec in records if "outcome" in rec.__dict__]) == 5  # one line per outcome, no more
    [error] = [rec for rec in records if rec.levelno >= logging.WARNING]
    assert (error.levelno, error.__dict__["error_type"], error.__dict__["key"]) == \
        (logging.ERROR, "ConnectionRefusedError", bad.keys(2).value)
    assert "ConnectionRefusedError: origin down" in error.getMessage()


def test_a_worker_with_refresher_log_format_json_writes_json_lines(r: redis.Redis, redis_url: str) -> None:
    worker = WorkerProcess(redis_url, extra_env={"REFRESHER_LOG_FORMAT": "json"}).start()
    try:
        assert worker.log is not None
        loaders.windowed.get(3)
        into_window(r, loaders.windowed.keys(3))
        loaders.windowed.get(3)
        loaders.failing.set(5, 10)
        into_window(r, loaders.failing.keys(5))
        loaders.failing.get(5)
        worker.log.wait_for(r'"outcome": "written"')
        worker.log.wait_for(r'"outcome": "failed"')
    finally:
        worker.stop()
    logged = [json.loads(line) for line in worker.log.lines if line.startswith("{")]
    assert len(logged) == len([line for line in worker.log.lines if '"level": ' in line])  # all of them parse
    assert {entry["logger"] for entry in logged} >= {"refresher", "celery.app.trace"}  # Celery's own lines too

    def about(key: str) -> list[dict[str, Any]]:
        return [{k: v for k, v in entry.items() if k not in ("time", "message")}
                for entry in logged if entry.get("key") == key]

    assert about(loaders.windowed.keys(3).value) == [
        {"level": "INFO", "logger": "refresher", "loader": "tests.windowed", "key": loaders.windowed.keys(3).value,
         "outcome": "written"},
    ]
    failing_key = loaders.failing.keys(5).value
    assert about(failing_key) == [
        {"level": "ERROR", "logger": "refresher", "loader": "tests.failing", "key": failing_key,
         "error_type": "RuntimeError"},
        {"level": "INFO", "logger": "refresher", "loader": "tests.failing", "key": failing_key, "outcome": "failed"},
    ]


@pytest.mark.parametrize("near_cache", [0, 10])
def test_the_tracking_line_names_what_is_tracked_never_a_near_cache_that_is_off(
    redis_url: str, near_cache: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 21: a worker with no near cache logged "near cache on" when its tracker (which
    keeps the epochs) started. Reading often starts the tracker without a near cache."""
    namespace = "logs-" + uuid.uuid4().hex[:8]
    cache = Refresher(redis_url, namespace=namespace, near_cache=near_cache)

    @cache.loader(ttl=60, name=f"{namespace}.square")
    def square(n: int) -> int:
        return n * n

    try:
        with caplog.at_level(logging.INFO, logger="refresher"):
            for _ in range(FETCHES_PER_SECOND * 2):
                assert square.get(3) == 9
            until(lambda: "tracking writes" in caplog.text, "the tracker never started")
        tracked = f"{namespace}:epoch:" + (f", {namespace}:{{" if near_cache else "")
        assert re.fullmatch(rf"refresher: tracking writes under {re.escape(tracked)} on \d+ master\(s\)",
                            [rec.getMessage() for rec in caplog.records if "tracking" in rec.getMessage()][0])
        assert "near cache on" not in caplog.text
    finally:
        cache.close()


def test_a_key_with_a_percent_sign_is_logged_as_text(caplog: pytest.LogCaptureFixture) -> None:
    """A key names the call's arguments, which a forged task chooses: a `%` in them once
    made the line's formatting fail (the property test of the wire found `['%']`), losing
    the line, and `%s` would have taken the line's own arguments."""
    from refresher.core.logs import about

    key = 'ns:{t.x:["100%", "%s %d %"]}'
    with caplog.at_level(logging.INFO, logger="refresher"):
        about("t.x", key).error("refresh raised %s: %s", "ValueError", "bad")
    assert [record.getMessage() for record in caplog.records] == [
        f"refresher: loader=t.x key={key} refresh raised ValueError: bad"]
    assert caplog.records[0].key == key  # type: ignore[attr-defined]  # a field `extra` adds
