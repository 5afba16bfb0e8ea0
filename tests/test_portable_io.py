"""The tracker's I/O without Linux's epoll or redis-py's private socket (issue 20, finding
3): the selectors module where select.epoll is missing (macOS, or deleted by gevent and
eventlet's monkey-patching), redis-py's public can_read where no socket can be had."""

from __future__ import annotations

import json
import logging
import os
import select
import selectors
import signal
import subprocess
import sys
import threading
import time

import pytest
import redis

from refresher import Refresher
from refresher.io.connect import parse, sync_client, tracking_pools
from refresher.io.tracking_link import Link, arrivals
from tests.support.ageing import into_window
from tests.support.servers import RedisServer


def test_without_epoll_the_near_cache_stays_coherent_under_concurrent_readers(
    r: redis.Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """As gevent's patch_all leaves things (no select.epoll, a DefaultSelector that is not
    epoll's): 8 threads read one near-cached key while another client rewrites it; each
    rewrite is served within 200 ms and the tracker never fails (a poll() object refuses
    two threads at once: it must not take the tracker down)."""
    monkeypatch.delattr(select, "epoll")
    monkeypatch.setattr(selectors, "DefaultSelector", selectors.PollSelector)
    cache = Refresher(redis_url=redis_url, near_cache=100, namespace="portable")
    loader = cache.loader(ttl=60, name="tests.portable")(lambda key: {"n": 0})
    stop, errors = threading.Event(), []

    def read() -> None:
        while not stop.is_set():
            try:
                loader.get("k")
            except Exception as exc:  # reported below
                errors.append(exc)

    try:
        assert cache.tracker.wait_live(5) and loader.get("k") == {"n": 0}
        readers = [threading.Thread(target=read) for _ in range(8)]
        with caplog.at_level(logging.WARNING, logger="refresher"):
            for thread in readers:
                thread.start()
            for n in range(1, 11):
                loader.set("k", {"n": n})
                deadline = time.monotonic() + 0.2
                while loader.get("k") != {"n": n}:
                    assert time.monotonic() < deadline, f"write {n} not seen within 200 ms"
            stop.set()
            for thread in readers:
                thread.join()
        assert errors == [] and cache.tracker.live
        assert not [rec for rec in caplog.records if "poll" in rec.getMessage()]  # "concurrent poll() invocation"
        assert cache.stats.snapshot()["near_hit"] > 0
    finally:
        stop.set()
        cache.close()


def test_a_process_without_fork_builds_a_refresher_that_reads_and_publishes(
    r: redis.Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As on Windows, where os has no register_at_fork (and nothing forks to need it): the
    hooks that reset a forked child's state are left out, not an AttributeError at Refresher()."""
    monkeypatch.delattr(os, "register_at_fork")
    cache = Refresher(redis_url=redis_url, near_cache=100, namespace="nofork")
    loader = cache.loader(ttl=60, name="tests.portable.nofork")(lambda key: {"k": key})
    try:
        assert loader.get("k") == {"k": "k"} and cache.tracker.wait_live(5)
        into_window(r, loader.keys("k"))
        assert loader.get("k") == {"k": "k"}  # served, and a refresh published
    finally:
        cache.close()  # after the publisher's thread has sent what it holds
    assert r.llen("refresher") == 1


def test_a_link_without_its_socket_reads_through_redis_pys_public_api(r: redis.Redis, redis_url: str) -> None:
    """The fallback should redis-py stop keeping a connection's socket where we find it:
    each connection's can_read and read_response bring the invalidations."""
    client = sync_client(parse(redis_url), 1.0)
    links = [Link(pool, ["fallback:"], raw=False) for pool in tracking_pools(client)]
    anything, close = arrivals(links)
    try:
        assert not anything(0)
        r.set("fallback:k", 1)
        deadline = time.monotonic() + 2
        while not anything(0):
            assert time.monotonic() < deadline
        assert [b"fallback:k"] in [keys for link in links for keys in link.read()]
    finally:
        close()
        for link in links:
            link.close()
        client.close()


@pytest.mark.standalone_only
def test_under_gevent_greenlets_read_and_the_tracker_sees_writes_and_a_frozen_server(
    r: redis.Redis, redis_url: str, redis_server: RedisServer
) -> None:
    """gevent's patch_all() removes select.epoll: Refresher() still starts, 50 greenlets read
    with no error, another client's write is seen within 200 ms, a read waiting on another
    process's load is woken by its value, and a frozen Redis takes the tracker down within a
    second (its PINGs time out on gevent's sockets too)."""
    child = subprocess.Popen([sys.executable, "-m", "tests.support.green", redis_url],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdin is not None and child.stdout is not None
    try:
        seen = json.loads(child.stdout.readline())
        assert seen["live"] and seen["errors"] == [] and seen["near_hits"] > 0, seen
        assert seen["write_seen_after"] < 0.2, seen
        assert seen["waited_for"] == {"n": 99} and seen["waited"] == 1 and seen["woken_after"] < 0.5, seen
        assert redis_server.proc is not None
        redis_server.proc.send_signal(signal.SIGSTOP)
        try:
            child.stdin.write("frozen\n")
            child.stdin.flush()
            down = json.loads(child.stdout.readline())
        finally:
            redis_server.proc.send_signal(signal.SIGCONT)
        assert down["down_after"] < 1.0, down
    finally:
        child.kill()
        child.wait()
