"""`python -m examples.demo` end to end: its own redis-server and worker, or a Redis it is
given, and in both cases a stampede that refresher absorbs and the naive read does not."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import redis

from examples.demo import HOT_USERS
from tests.support.servers import ROOT

DEMO_TIMEOUT = 60


def run_demo(*args: str, redis_url: str | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFRESHER_")}
    if redis_url is not None:
        env["REFRESHER_REDIS_URL"] = redis_url
    done = subprocess.run([sys.executable, "-m", "examples.demo", *args], cwd=ROOT, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=DEMO_TIMEOUT)
    assert done.returncode == 0, f"the demo failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def table_row(output: str, section: str, row: str) -> tuple[str, str]:
    """The (refresher, naive) cells of `row` in the table section starting with `section`."""
    body = output.split("\n" + section, 1)[1]
    match = re.search(rf"^  {re.escape(row)}\s+(\S+(?: \S+)*)\s{{2,}}(\S+(?: \S+)*)$", body, re.MULTILINE)
    assert match is not None, f"no {row!r} row under {section!r} in:\n{output}"
    return match.group(1), match.group(2)


def test_the_demo_starts_its_own_redis_and_worker_and_prints_the_table() -> None:
    output = run_demo("--seconds", "2.5", "--processes", "3", "--threads", "6")
    url = re.search(r"redis: started redis-server at (\S+)", output)
    assert url is not None, output
    assert "celery -A workers worker is ready" in output
    assert re.search(r"^\[4/4\] hot keys, naive: ", output, re.MULTILINE), output  # progress lines
    for section in ("cold stampede", "hot keys"):
        for row in ("reads", "origin calls", "tasks enqueued", "read latency p50", "read latency p99"):
            table_row(output, section, row)
    refresher, naive = map(int, table_row(output, "cold stampede", "origin calls"))
    assert 1 <= refresher < naive
    assert table_row(output, "cold stampede", "reads") == ("18", "18")
    # hot keys: refreshed ahead by the worker, and every task it ran wrote a new value
    enqueued = int(table_row(output, "hot keys", "tasks enqueued")[0])
    assert enqueued >= len(HOT_USERS)  # each hot key reached its refresh window (at 1.6 s) at least once
    assert table_row(output, "hot keys", "worker results")[0] == f"{enqueued} written"
    assert table_row(output, "hot keys", "reads > 100 ms")[0] == "0"
    # everything it started is gone
    assert output.rstrip().endswith("redis: stopped redis-server\ndone")
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(url.group(1), socket_connect_timeout=1).ping()


def test_the_demo_uses_a_given_redis_and_leaves_its_data_alone(r: redis.Redis, redis_url: str) -> None:
    r.set("app:user:1", "mine")
    output = run_demo("--seconds", "1", "--processes", "2", "--threads", "4", redis_url=redis_url)
    assert f"redis: using {redis_url} (REFRESHER_REDIS_URL)" in output
    refresher, naive = map(int, table_row(output, "cold stampede", "origin calls"))
    assert 1 <= refresher < naive
    run = re.search(r"queue (demo-[0-9a-f]+)", output)
    assert run is not None, output
    assert r.get("app:user:1") == b"mine"
    assert [k for k in r.scan_iter() if run.group(1).encode() in k] == []
    assert r.ping()  # the given server is not stopped
