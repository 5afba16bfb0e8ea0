"""A read that finds a miss of its key already in flight in its process joins it before
sending a GET: that GET would miss too (or find what the miss is about to return), and on
a cold stampede every GET spared is one turn of the interpreter's lock, and one new pooled
connection, less on the way to the load. Real reader processes, a real redis-server."""

from __future__ import annotations

import pytest
import redis

from tests.support.following import run_followers
from tests.support.loaders import calls
from tests.support.reading import Reading

PROCESSES, FOLLOWERS = 3, 12


def gets(r: redis.Redis) -> int:
    return int(r.info("commandstats").get("cmdstat_get", {}).get("calls", 0))


@pytest.mark.standalone_only  # counts the GETs of one server
def test_readers_that_find_the_miss_in_flight_send_no_get(r: redis.Redis, reading: Reading) -> None:
    before = gets(r)
    while_held: list[int] = []
    reports = run_followers(reading.mode, PROCESSES, FOLLOWERS, lambda: while_held.append(gets(r) - before))
    values = [v for out, _ in reports for v in out]
    assert values == [{"n": 7}] * (PROCESSES * (1 + FOLLOWERS)), [v for v in values if v != {"n": 7}][:1]
    # One GET per process (its first read's), the followers' none, before or after the load
    # landed; commandstats also counts the GET of its lock inside the one commit script
    assert while_held == [PROCESSES]
    assert gets(r) - before == PROCESSES + 1
    assert calls("follow_held") == 1
    assert sum(stats.get("load", 0) for _, stats in reports) == 1
    assert sum(stats.get("coalesced", 0) for _, stats in reports) == PROCESSES * FOLLOWERS
    assert sum(stats.get("miss", 0) for _, stats in reports) == PROCESSES  # each process's first read led
