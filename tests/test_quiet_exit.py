"""Shutting down is quiet, and a warning means something is wrong (issue 25): a process
that ends while its Redis is stopped says nothing, and one whose Redis stops while it runs
warns once, however many times its tracker then fails to reconnect."""

from __future__ import annotations

import gc
import subprocess
import sys
import threading

from refresher import Refresher
from tests.support.servers import ROOT, RedisServer
from tests.support.waiting import until

APP = ROOT / "tests" / "support" / "exiting_app.py"


def run_and_stop_redis(mode: str) -> list[str]:
    """The app's WARNING lines, its Redis stopped when it asks."""
    server = RedisServer()
    server.start()
    app = subprocess.Popen([sys.executable, str(APP), server.url, mode], cwd=ROOT, text=True,
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert app.stdin is not None and app.stdout is not None
    try:
        assert app.stdout.readline().strip() == "read"
        assert app.stdout.readline().strip() == "stop the server"
        server.stop()
        app.stdin.write("stopped\n")
        app.stdin.flush()
        _, stderr = app.communicate(timeout=30)
    finally:
        app.kill()
        server.stop()
    assert app.returncode == 0, stderr
    return [line for line in stderr.splitlines() if line.startswith(("WARNING", "ERROR", "CRITICAL"))]


def test_a_process_that_ends_while_its_redis_stops_says_nothing() -> None:
    assert run_and_stop_redis("at-exit") == []


def test_a_redis_lost_while_the_process_runs_is_warned_once() -> None:
    warnings = run_and_stop_redis("running")
    assert len(warnings) == 1 and "near cache bypassed" in warnings[0], warnings


def test_a_refresher_nobody_holds_takes_its_tracking_thread_with_it(redis_url: str) -> None:
    """Else every Refresher an app drops keeps a thread pinging its Redis for the life of the
    process, and warns when that Redis goes."""
    before = set(threading.enumerate())
    cache = Refresher(redis_url, near_cache=10)
    assert cache.near is not None and cache.near.tracker.wait_live(5)
    (thread,) = [t for t in set(threading.enumerate()) - before if t.name == "refresher-tracking"]
    del cache
    # collected by a pass that finds the thread between turns (within a turn it holds it)
    until(lambda: gc.collect() >= 0 and not thread.is_alive(), "the tracking thread outlived its Refresher", 5)
