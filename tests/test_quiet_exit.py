"""Shutting down is quiet, and a warning means something is wrong (issue 25): a process
that ends while its Redis is stopped says nothing, and one whose Redis stops while it runs
warns once, however many times its tracker then fails to reconnect."""

from __future__ import annotations

import subprocess
import sys

from tests.support.servers import ROOT, RedisServer

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
