"""Bytes the library did not write, put there by a plain Redis client as a careless
neighbour (or an attacker) sharing the cache would: every read still answers, the damage
is repaired, and the near cache stays coherent with another process's writes."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from typing import Any, Callable

import pytest
import redis

from refresher import Refresher
from refresher.ops.cli.state import describe, read_state
from refresher.core.renew import refresh
from tests.support import foreign_loaders
from tests.support.foreign_loaders import calls, profile, set_elsewhere
from tests.support.reading import Reading
from tests.support.readers import run_readers
from tests.support.waiting import lead_and_wait, until

pytestmark = pytest.mark.standalone_only  # the near cache's tracking (tests/test_near.py covers the Cluster's)
COHERENT_WITHIN = 0.2  # seconds from another process's `set` returning to this process serving it


def served_soon(reading: Reading, n: int, value: dict[str, Any], since: float) -> None:
    """This process serves `value` for `n` within COHERENT_WITHIN of `since`."""
    while (got := reading.get(profile, n)) != value:
        assert time.monotonic() - since < COHERENT_WITHIN, f"still served {got} after another process's set"
    assert time.monotonic() - since < COHERENT_WITHIN


def near_live(r: redis.Redis) -> None:
    """Tracking on, and every invalidation sent before now applied: the fixture's FLUSHALL
    drops the copies an earlier test left (the same n, another parameter), but its push
    may reach the tracker after the fixture's OK. A write to an epoch key no loader uses,
    heard, follows it on the same connection."""
    near = foreign_loaders.cache.near
    assert near is not None and near.tracker.wait_live(5)
    before = near.invalidated
    r.set(profile.state.epochs.tag_key("test-barrier"), "0 0")
    until(lambda: near.tracker.sync() and near.invalidated > before, "the tracker did not hear the barrier")


@pytest.mark.parametrize("garbage", [b"garbage", b"1 x", b"99999999999999999999 1", b"\xff\xfe"])
def test_a_garbage_epoch_is_a_hard_invalidation_and_the_read_repairs_it(
        reading: Reading, r: redis.Redis, garbage: bytes, caplog: pytest.LogCaptureFixture) -> None:
    near_live(r)
    first = reading.get(profile, 1)
    epoch_key = profile.state.epoch_key
    r.set(epoch_key, garbage)
    with caplog.at_level(logging.WARNING, logger="refresher"):
        again = reading.get(profile, 1)
        assert [reading.get(profile, 1) for _ in range(3)] == [again] * 3
    assert again["load"] == first["load"] + 1, "the value loaded before the corruption was served"
    repaired = r.get(epoch_key)
    assert repaired is not None and repaired != garbage
    epoch, floor = map(int, repaired.split())
    assert epoch == floor > 10**12  # the server's clock in ms: above any epoch a value was loaded under
    assert [rec.message for rec in caplog.records].count(caplog.records[0].message) == 1
    assert "not an epoch" in caplog.records[0].message and len(caplog.records) == 1
    served_soon(reading, 1, {"n": 1, "load": -1}, set_elsewhere(1, {"n": 1, "load": -1}))


def test_a_bump_repairs_a_garbage_epoch_and_a_tag_key_of_another_type(reading: Reading, r: redis.Redis) -> None:
    near_live(r)
    old = reading.get(profile, 2)
    r.set(profile.state.epoch_key, b"garbage")
    profile.invalidate_all(hard=False)  # the BUMP_EPOCH script used to fail on it
    epoch, floor = map(int, r.get(profile.state.epoch_key).split())  # type: ignore[union-attr]
    assert epoch == floor + 1 and floor > 10**12
    tag_key = profile.state.epochs.tag_key("profile:2")
    r.rpush(tag_key, "x")  # a list where a tag's epoch belongs
    foreign_loaders.cache.invalidate_tag("profile:2")
    assert r.type(tag_key) == b"string"
    fresh = reading.get(profile, 2)
    assert fresh["load"] > old["load"]
    served_soon(reading, 2, {"n": 2, "load": -2}, set_elsewhere(2, {"n": 2, "load": -2}))


def test_a_value_key_of_another_type_is_reloaded_and_overwritten(
        reading: Reading, r: redis.Redis, caplog: pytest.LogCaptureFixture) -> None:
    near_live(r)
    keys = profile.keys(3)
    r.rpush(keys.value, "somebody", "else's")
    with caplog.at_level(logging.WARNING, logger="refresher"):
        value = reading.get(profile, 3)
    assert value == {"n": 3, "load": calls("profile")}
    assert "unreadable data treated as a miss" in caplog.text
    assert r.type(keys.value) == b"string" and r.get(keys.lock) is None
    assert reading.get(profile, 3) == value
    served_soon(reading, 3, {"n": 3, "load": -3}, set_elsewhere(3, {"n": 3, "load": -3}))


def test_a_worker_refresh_overwrites_a_value_key_of_another_type_and_frees_its_lock(r: redis.Redis) -> None:
    """The worker's claim script read the value with GET after taking the lock: WRONGTYPE
    there failed the script and left the lock held for its TTL."""
    keys = profile.keys(4)
    r.rpush(keys.value, "x")
    assert profile.run_steps(refresh(profile.state, profile.call((4,), {}), time.time(), None)) == "written"
    assert r.type(keys.value) == b"string" and r.get(keys.lock) is None
    assert profile.get(4) == {"n": 4, "load": calls("profile")}


def test_a_lock_key_without_a_ttl_is_not_waited_on_for_ever(reading: Reading, r: redis.Redis) -> None:
    """Every lock the library takes has a TTL: one without is somebody else's bytes, and
    readers used to spin on it (lock held, no PTTL to wait for, retry) for as long as it stayed."""
    keys = profile.keys(9)
    r.set(keys.lock, "somebody else's")
    done = threading.Event()
    reader = threading.Thread(target=lambda: (reading.get(profile, 9), done.set()), daemon=True)
    reader.start()
    assert done.wait(10), "the read spun on the foreign lock"
    assert r.get(keys.lock) is None and reading.get(profile, 9)["n"] == 9


FORGED = [b"vgarbage", b"v", b"e{not json", b'e["a", "list"]', b'e{"type": 1}', b"\xff\x00", b"", b"x" * 100,
          b"wrong", b"w", b"r"]


def test_forged_signal_messages_never_reach_a_waiter_as_values(reading: Reading, redis_url: str, r: redis.Redis) -> None:
    """Anybody may publish on a key's signal channel: a waiter given garbage reads the key
    (or contends for the lock again) and ends with the holder's value, never an error."""
    leader, waiter = (Refresher(redis_url, queue="forged-" + uuid.uuid4().hex[:8]) for _ in range(2))

    def command_calls(command: str) -> int:
        return int(r.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0))

    def reaction(message: bytes) -> Callable[[], int]:
        """Garbage sends the waiter to read the key (MGET) and listen on; "written" with
        nothing there, or "retry", to wait anew (a wait counted, on the subscription the
        read keeps for all its waits, so no SSUBSCRIBE to see)."""
        return (lambda: waiter.stats["waited"]) if message[:1] in (b"w", b"r") else (lambda: command_calls("mget"))

    def forge(channel: str) -> None:
        for message in FORGED:  # each seen reacted to before the next is sent
            seen = reaction(message)
            before = seen()
            r.spublish(channel, message)
            deadline = time.monotonic() + 5
            while seen() == before:
                assert time.monotonic() < deadline, f"the waiter did not react to {message!r}"
                time.sleep(0.005)

    def origin(n: int) -> dict[str, int]:
        return {"n": n}

    try:  # ttl=600 gives a 20 s lock: a reaction within 5 s is the message's, not the wait's deadline
        led, waited = lead_and_wait(reading, leader, waiter, origin, 5, meanwhile=forge, ttl=600)
        waits = waiter.stats["waited"]
    finally:
        leader.close()
        waiter.close()
    assert led == waited == {"n": 5}
    assert waits == 1 + 3, "a wait for each of the forged `wrong`, `w` and `r` (written: nothing there; retry)"


def test_inspect_shows_foreign_bytes_as_unreadable(r: redis.Redis) -> None:
    call = profile.call((6,), {})
    r.rpush(call.keys.value, "x")
    r.set(call.keys.pending, b"\xff")
    state = read_state(profile, call)
    assert (state.state, state.why_missing, state.size_bytes) == ("missing", "unreadable: a Redis list, not a string", None)
    assert ("state", "missing (unreadable: a Redis list, not a string)") in describe(state)
    r.delete(call.keys.value)
    r.set(call.keys.value, b"r1|garbage")
    assert read_state(profile, call).why_missing == "unreadable"


def test_a_big_value_reaches_waiters_in_other_processes_by_reading_the_key(r: redis.Redis, reading: Reading) -> None:
    """A 5 MB value, 4 processes x 2 readers: the commit's publish says "written" rather
    than carrying the value, so no waiter's pub/sub output buffer (held to a 4 MB limit
    here, 32 MB by default: a 40 MB value did it) overflows and drops its connection."""
    limits = r.config_get("client-output-buffer-limit")["client-output-buffer-limit"]
    r.config_set("client-output-buffer-limit", "pubsub 4mb 2mb 60")
    try:
        reports = run_readers("tests.support.foreign_loaders.big", [7], processes=4, threads=2, mode=reading.mode)
    finally:
        r.config_set("client-output-buffer-limit", limits)
    assert [e for rep in reports for e in rep.errors] == []
    values = [v for rep in reports for v in rep.values]
    assert len(values) == 8 and all(v == "7" * foreign_loaders.BIG_BYTES for v in values)
    assert calls("big") == 1
    assert sum(rep.stats.get("waited", 0) for rep in reports) >= 3


def test_a_small_value_still_travels_in_the_signal(r: redis.Redis) -> None:
    """Below SIGNAL_VALUE_BYTES the waiters get the envelope itself (no read of the key)."""
    channel = profile.keys(8).signal
    listener = r.pubsub()
    listener.ssubscribe(channel)
    assert listener.get_sharded_message(timeout=5)["type"] == "ssubscribe"  # type: ignore[index]
    value = profile.get(8)
    message = listener.get_sharded_message(timeout=5)
    listener.close()
    assert message is not None and message["data"][:1] == b"v"
    assert json.loads(message["data"].rsplit(b"|", 1)[1]) == value
