"""The `refresher` command line, run as a user runs it: `python -m refresher` and the
console script, as subprocesses, against the session's redis-server (and for `warm`, a
real `celery -A workers worker`)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import redis

from refresher.core.miss import BACKOFF
from refresher.core.envelope import Envelope
from refresher.core.epochs import parse as parse_epoch
from refresher.core.policy import Dropped
from tests.support import loaders
from tests.support.ageing import age, expire_in
from tests.support.cluster import RedisClusterServers
from tests.support.servers import ROOT, WorkerProcess, free_port

SCRIPT = Path(sys.executable).parent / "refresher"
RUNNERS = {"python -m refresher": [sys.executable, "-m", "refresher"], "refresher": [str(SCRIPT)]}
LOADERS = "tests.support.loaders"


def cli(*args: str, runner: str = "python -m refresher", cwd: Path = ROOT, stdin: str | None = None,
        **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "REFRESHER_LOADERS": LOADERS, **env}
    return subprocess.run([*RUNNERS[runner], *args], cwd=cwd, env=environment, input=stdin,
                          capture_output=True, text=True, timeout=60)


def ok(*args: str, **options: Any) -> str:
    done = cli(*args, **options)
    assert done.returncode == 0, f"exit {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def inspect(*args: str) -> dict[str, Any]:
    state: dict[str, Any] = json.loads(ok("inspect", *args, "--json"))
    return state


def unreachable_redis() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there


def test_help_lists_the_commands() -> None:
    text = ok("--help")
    assert text.startswith("Usage: python -m refresher [OPTIONS] COMMAND [ARGS]...")
    assert all(f"\n  {command} " in text for command in ("inspect", "invalidate", "warm", "keys", "demo")), text


def test_inspect_follows_a_key_through_its_life(r: redis.Redis) -> None:
    keys = loaders.windowed.keys(3)  # ttl 60 s, refresh window 50%
    assert inspect("tests.windowed", "3") == {
        "loader": "tests.windowed", "key": keys.value, "state": "missing", "why_missing": "not cached",
        "version": None, "age_ms": None, "ttl_ms": None, "ttl_left_ms": None, "window_ms": 30_000,
        "stale_ms": None, "key_pttl_ms": None, "size_bytes": None, "lock_pttl_ms": None, "pending": None,
        "pending_pttl_ms": None,
    }
    loaders.windowed.get(3)
    stored = age(r, keys, 40_000)  # 20 s left: in the window
    r.set(keys.lock, "a-token", px=30_000)
    r.set(keys.pending, "a-token", px=40_000)
    state = inspect("tests.windowed", "[3]")
    assert (state["state"], state["why_missing"], state["version"]) == ("in window", None, stored.version)
    assert 40_000 <= state["age_ms"] < 50_000 and state["age_ms"] + state["ttl_left_ms"] == 60_000
    assert state["ttl_ms"] == 60_000 and state["stale_ms"] == 0 and state["key_pttl_ms"] > 0
    assert state["size_bytes"] == len(r.get(keys.value) or b"")
    assert 0 < state["lock_pttl_ms"] <= 30_000 and state["pending"] == "refresh" and 0 < state["pending_pttl_ms"] <= 40_000

    r.delete(keys.lock)
    r.set(keys.pending, BACKOFF, px=30_000)
    expire_in(r, keys, -2_000)  # its TTL ran out 2 s ago; the key itself is still in Redis
    text = ok("inspect", "tests.windowed", '{"n": 3}')
    for line in ("state      missing (expired)", "lock       free", "pending    backing off after a failed load, "):
        assert line in text, text
    assert re.search(r"^TTL left   none, ran out [2-9]\.\d s ago \(refresh window: the last 30\.0 s\)$", text, re.M), text

    assert ok("invalidate", "tests.windowed", "3", runner="refresher") == f"invalidated {keys.value}\n"
    state = inspect("tests.windowed", "3")
    assert (state["state"], state["why_missing"]) == ("missing", "invalidated")
    assert state["version"] not in (None, stored.version) and state["age_ms"] is None
    calls = loaders.calls("windowed")
    assert loaders.windowed.get(3) == 6 and loaders.calls("windowed") == calls + 1  # loaded again


def test_invalidate_all_hard_or_soft_and_by_tag(redis_url: str) -> None:
    loaders.windowed.get(5)
    assert ok("invalidate", "tests.windowed", "--all", "--soft") == \
        "invalidated every value of tests.windowed (soft: refreshed as read)\n"
    assert loaders.windowed.cache.epochs.judge(loaders.windowed.state.epoch_key, None, _epochs(redis_url)) is Dropped.SOFT
    assert ok("invalidate", "tests.windowed", "--all") == "invalidated every value of tests.windowed (hard)\n"
    assert loaders.windowed.cache.epochs.judge(loaders.windowed.state.epoch_key, None, _epochs(redis_url)) is Dropped.HARD
    assert ok("invalidate", "--tag", "user:7") == "invalidated every value tagged user:7\n"
    assert redis.Redis.from_url(redis_url).get("refresher:epoch:tag:user:7") == b"1 1"


def _epochs(redis_url: str) -> dict[str, tuple[int, int]]:
    client = redis.Redis.from_url(redis_url)
    return {key.decode(): parse_epoch(client.get(key)) for key in client.scan_iter("refresher:epoch:*")}


def test_typed_arguments_take_the_tagged_form_of_the_keys(redis_url: str) -> None:
    from tests.support.typed_loaders import Tier, calls, since

    user = "12345678-1234-5678-1234-567812345678"
    args = json.dumps([{"$uuid": user}, {"$date": "2026-01-31"}, {"$enum": ["tests.support.typed_loaders.Tier", "PRO"]}])
    env = {"REFRESHER_LOADERS": "tests.support.typed_loaders"}
    warmed = json.loads(ok("warm", "typed.since", args, "--now", "--json", **env))  # the loader asserts its argument types
    key = since.keys(UUID(user), date(2026, 1, 31), Tier.PRO).value
    assert warmed["results"] == [{"key": key, "seen": None, "result": "written"}]
    assert since.get(UUID(user), date(2026, 1, 31), Tier.PRO)[:3] == (user, "2026-01-31", "pro")
    assert calls("since") == 1  # that was a hit on the key the command wrote


def test_keys_counts_and_samples_by_scan_never_keys(r: redis.Redis) -> None:
    for n in range(25):
        loaders.windowed.set(n, n * 2)
    loaders.hot.set("x", {"key": "x"})  # another loader's key
    r.set(loaders.windowed.keys(1).lock, "a-token", px=10_000)  # not a value key
    r.set(loaders.windowed.keys(2).pending, "a-token", px=10_000)
    r.config_resetstat()
    found = json.loads(ok("keys", "tests.windowed", "--sample", "3", "--json"))
    assert found == {"loader": "tests.windowed", "match": "refresher:{tests.windowed:*}", "count": 25,
                     "sample": sorted(loaders.windowed.keys(n).value for n in range(25))[:3]}
    commands = r.info("commandstats")
    assert "cmdstat_scan" in commands and "cmdstat_keys" not in commands


def keys_on(port: int) -> int:
    with redis.Redis(port=port) as client:
        return int(client.dbsize())


def test_keys_on_a_redis_cluster_scans_every_master(redis_url: str, tmp_path: Path) -> None:
    """A loader module of the user's own, found in the directory the command runs in, as
    `celery -A workers worker` finds it; its cache a Redis Cluster, its broker a plain Redis."""
    (tmp_path / "shop_loaders.py").write_text(
        "from refresher import Refresher\n\ncache = Refresher()\n\n\n"
        "@cache.loader(ttl=60, name='shop.item')\ndef item(n: int) -> int:\n    return n\n"
    )
    cluster = RedisClusterServers(masters=3, replicas=0)
    cluster.start()
    try:
        env = {"REFRESHER_REDIS_URL": cluster.url, "REFRESHER_BROKER_URL": redis_url, "REFRESHER_LOADERS": "shop_loaders"}
        ok("warm", "shop.item", *map(str, range(30)), "--now", runner="refresher", cwd=tmp_path, **env)
        text = ok("keys", "shop.item", "--sample", "2", runner="refresher", cwd=tmp_path, **env)
        per_master = [keys_on(node.port) for node in cluster.nodes]
    finally:
        cluster.stop()
    assert text == "30 keys of shop.item (SCAN MATCH refresher:{shop.item:*})\n" \
                   "  refresher:{shop.item:[0]}\n  refresher:{shop.item:[10]}\n"
    assert sum(per_master) == 30 and all(per_master), per_master  # spread over every master


def test_warm_enqueues_refresh_tasks_that_a_worker_runs(r: redis.Redis, worker_process: WorkerProcess) -> None:
    worker_log = worker_process.log
    assert worker_log is not None
    loaders.windowed.get(1)
    stored = Envelope.from_bytes(r.get(loaders.windowed.keys(1).value) or b"")
    calls = loaders.calls("windowed")
    lines = "".join(f"{n}\n\n" for n in range(1, 26))  # blank lines are skipped
    done = cli("warm", "tests.windowed", "--from-file", "-", "--json", stdin=lines)
    assert done.returncode == 0, done.stderr
    assert "enqueueing 25 calls of tests.windowed" in done.stderr  # the progress bar's label, off a terminal
    warmed = json.loads(done.stdout)
    assert warmed["counts"] == {"enqueued": 25} and warmed["queue"] == "refresher"
    seen = [result["seen"] for result in warmed["results"]]
    assert seen == [stored.version] + [None] * 24  # the version each replaces, None for a key not stored
    worker_log.wait_for(r"refresher\.refresh\[[^\]]+\] succeeded in [^:]+: 'written'", count=25)
    assert loaders.calls("windowed") == calls + 25
    assert Envelope.from_bytes(r.get(loaders.windowed.keys(1).value) or b"").version != stored.version

    text = ok("warm", "tests.windowed", "1", runner="refresher")
    assert text == "enqueued 1 refresh task for tests.windowed on queue 'refresher' " \
                   "(1 replace a stored version, 0 fill a key with nothing stored)\n"
    worker_log.wait_for(r"succeeded in [^:]+: 'written'", count=26)


def test_warm_now_loads_here_as_a_worker_would(r: redis.Redis) -> None:
    calls = loaders.calls("windowed")
    assert ok("warm", "tests.windowed", "1", "[2]", "--now") == "loaded 2 calls of tests.windowed here: 2 written\n"
    assert loaders.calls("windowed") == calls + 2 and loaders.windowed.get(2) == 4

    r.set(loaders.windowed.keys(3).pending, BACKOFF, px=30_000)  # a load of it failed lately
    backing_off = json.loads(ok("warm", "tests.windowed", "3", "--now", "--json"))
    assert backing_off["counts"] == {"backing_off": 1} and loaders.calls("windowed") == calls + 2

    failed = cli("warm", "tests.failing", "1", "--now", runner="refresher")
    assert failed.returncode == 1 and failed.stdout == "loaded 1 call of tests.failing here: 1 failed\n"
    assert "RuntimeError: origin down for 1" in failed.stderr and "Traceback" not in failed.stderr
    assert failed.stderr.splitlines()[-1] == "Error: 1 of 1 loads failed (the log lines above say why)"


BAD = unreachable_redis()
ERRORS = {
    "bad JSON": (["inspect", "tests.windowed", "[1"], {}, 2, "Error: ARGS_JSON: '[1' is not JSON: "),
    "unknown loader": (["invalidate", "tests.nope", "1"], {}, 2, "Error: no loader named 'tests.nope': "
                       f"REFRESHER_LOADERS='{LOADERS}' registers tests.failing, tests.gated, "),
    "arguments that do not fit": (["inspect", "tests.windowed", "[1, 2]"], {}, 2,
                                  "Error: ARGS_JSON: '[1, 2]' does not fit the loader: loader 'tests.windowed': "),
    "unknown loader module": (["keys", "tests.windowed"], {"REFRESHER_LOADERS": "no_such_loaders"}, 2,
                              "Error: cannot import the modules in REFRESHER_LOADERS='no_such_loaders': "),
    "no loader modules": (["keys", "tests.windowed"], {"REFRESHER_LOADERS": ""}, 2,
                          "Error: REFRESHER_LOADERS is not set: "),
    "Redis down: inspect": (["inspect", "tests.windowed", "1"], {"REFRESHER_REDIS_URL": BAD}, 1,
                            "Error: cannot reach the cache Redis: Error 111 connecting to "),
    "Redis down: invalidate": (["invalidate", "tests.windowed", "1"], {"REFRESHER_REDIS_URL": BAD}, 1,
                               "Error: cache Redis unavailable while writing refresher:{tests.windowed:[1]}: "),
    "Redis down: keys": (["keys", "tests.windowed"], {"REFRESHER_REDIS_URL": BAD}, 1, "Error: cannot reach the cache Redis: "),
    "broker down: warm": (["warm", "tests.windowed", "1"], {"REFRESHER_BROKER_URL": BAD}, 1, "Error: cannot reach the broker: "),
}


@pytest.mark.parametrize("case", ERRORS)
def test_errors_are_one_line_and_a_unix_exit_status(case: str, redis_url: str) -> None:
    args, env, status, message = ERRORS[case]
    done = cli(*args, **env)
    assert (done.returncode, done.stdout) == (status, ""), done.stderr
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith(message), done.stderr


def test_warm_checks_every_line_before_sending_any(r: redis.Redis, tmp_path: Path) -> None:
    calls = tmp_path / "calls.txt"
    calls.write_text("1\n[2]\n\n{\"n\": 3\n")
    done = cli("warm", "tests.windowed", "--from-file", str(calls))
    assert done.returncode == 2 and done.stderr.startswith(f"Error: {calls}:4: '{{\"n\": 3' is not JSON: ")
    assert r.llen("refresher") == 0  # nothing enqueued


@pytest.mark.parametrize("args", [["warm", "tests.windowed"], ["nope"], ["invalidate", "tests.windowed"],
                                  ["invalidate", "tests.windowed", "1", "--all"], ["invalidate", "--tag", "a b"],
                                  ["invalidate", "tests.windowed", "1", "--soft"]])
def test_click_usage_errors_exit_2(args: list[str], redis_url: str) -> None:
    done = cli(*args)
    assert done.returncode == 2 and done.stderr.startswith("Usage: ") and "Traceback" not in done.stderr


def test_demo_is_the_make_demo_run(redis_url: str, tmp_path: Path) -> None:
    usage = ok("demo", "--help", runner="refresher")
    assert usage.startswith("usage: python -m examples.demo") and "--processes" in usage
    assert cli("demo", "--seconds", "0").returncode == 2  # the demo's own usage error
    elsewhere = cli("demo", runner="refresher", cwd=tmp_path)
    assert elsewhere.returncode == 1 and elsewhere.stderr == (
        "Error: the demo needs the repository's examples/ package: run `refresher demo` from a checkout of refresher\n")
    # A short run on the session's Redis: its reader processes are spawned, so they import
    # the console script again as their main module.
    run = ok("demo", "--seconds", "0.2", "--processes", "1", "--threads", "1", runner="refresher")
    assert f"redis: using {redis_url} (REFRESHER_REDIS_URL)" in run and run.endswith("done\n")
