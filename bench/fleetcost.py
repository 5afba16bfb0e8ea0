"""`python -m bench.fleetcost [--quick]`: what each process costs Redis whether it reads or
not (issue 23, docs/scaling.md section 8), measured on one redis-server on a free loopback port.

  connections: CLIENT LIST after a Refresher's first read, near cache on and off, and after
      reading often with it off (what starts the tracker then);
  PINGs a second: INFO commandstats' cmdstat_ping over an idle stretch, per Refresher;
  pushes: TRACKERS Refreshers with a near cache, reading nothing, while another Refresher
      loads KEYS keys (lock, commit, unlock each) and `set`s them once more; each tracker
      counts the invalidations it received (its near cache's `invalidated`);
  what tracking buys with the near cache off: a hit with the tracker on (epochs known in the
      process) against one with no tracker (the loader's epoch fetched by every read), in
      alternating rounds: wall time, and redis-server CPU (INFO cpu) per hit.

Each Refresher stands for one process: its tracker and pool are its own. The broker
is a second redis-server, so the cache's connections are the cache client's alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from typing import Any

import redis

from refresher import Refresher
from refresher.core.keys import Keys
from refresher.core.near import NearCache
from refresher.io.tracking import CLIENT_NAME, PING_EVERY
from refresher.io.tracking_start import FETCHES_PER_SECOND
from tests.support.servers import RedisServer

TRACKERS, KEYS, NAME = 4, 100, "bench.fleetcost.square"


def _loader(cache: Refresher, name: str = NAME) -> Any:
    @cache.loader(ttl=300, name=name)
    def square(n: int) -> int:
        return n * n

    return square


def _connections(raw: redis.Redis) -> tuple[int, int]:
    """(every client but `raw` itself, those named as the tracker's)."""
    clients = raw.client_list()
    return len(clients) - 1, sum(1 for client in clients if client.get("name") == CLIENT_NAME)


def connections(url: str, raw: redis.Redis) -> dict[str, tuple[int, int]]:
    """After one read with the near cache off, after reading often with it off (epoch
    fetches start the tracker: io/tracking_start.py), and after one read with it on."""
    found = {}
    for label, near, reads in (("near cache off, 1 read", 0, 1),
                               (f"near cache off, {2 * FETCHES_PER_SECOND} reads in a second", 0, 2 * FETCHES_PER_SECOND),
                               ("near cache on, 1 read", 100, 1)):
        deadline = time.monotonic() + 10
        while _connections(raw)[0] and time.monotonic() < deadline:  # the last one's are closing
            time.sleep(0.01)
        cache = Refresher(url, namespace="cost-" + uuid.uuid4().hex[:6], near_cache=near)
        square = _loader(cache, f"{NAME}.{near}.{reads}")
        for _ in range(reads):
            square.get(1)
        if reads > 1 or near:
            assert cache.tracker.wait_live(5)
        else:  # a tracker started would be connected by now
            time.sleep(0.5)
        found[label] = _connections(raw)
        cache.close()
    return found


def pings(url: str, raw: redis.Redis, seconds: float) -> tuple[float, float]:
    """PINGs a second per idle Refresher, and µs of redis-server CPU each: an idle stretch
    with TRACKERS Refreshers, less one with none (what Redis spends on its own timers)."""
    spent, sent = [], 0
    for count in (0, TRACKERS):
        caches = [Refresher(url, namespace="cost-pings") for _ in range(count)]
        for cache in caches:
            assert cache.tracker.wait_live(5)
        before, cpu = _ping_calls(raw), _cpu(raw)
        time.sleep(seconds)  # idle on purpose: what the tracker threads send with no reads at all
        spent.append(_cpu(raw) - cpu)
        sent = _ping_calls(raw) - before
        for cache in caches:
            cache.close()
    return sent / seconds / TRACKERS, (spent[1] - spent[0]) / max(sent, 1) * 1e6


def _ping_calls(raw: redis.Redis) -> int:
    return int(_info(raw, "commandstats").get("cmdstat_ping", {}).get("calls", 0))


def pushes(url: str, raw: redis.Redis) -> list[int]:
    """Invalidations each idle tracker received while KEYS keys were loaded, then set."""
    namespace = "cost-" + uuid.uuid4().hex[:6]
    idle = [Refresher(url, namespace=namespace, near_cache=100) for _ in range(TRACKERS)]
    heard: list[list[bytes]] = []
    for cache in idle:
        assert cache.near is not None and cache.tracker.wait_live(5)
        heard.append(_recording(cache.near))
    writer = Refresher(url, namespace=namespace)
    square = _loader(writer)
    for n in range(KEYS):
        square.get(n)  # a miss: lock, load, commit, unlock
        square.set(n, n * n)
    writer.close()
    end = (Keys.build(namespace, NAME, "[]").value + ":end").encode()
    raw.set(end, b"1")  # after every write above on the one connection each tracker has
    for cache, keys in zip(idle, heard):
        deadline = time.monotonic() + 10
        while end not in keys and time.monotonic() < deadline:
            cache.tracker.sync()
            time.sleep(0.01)
        cache.close()
    return [len(keys) - 1 for keys in heard]


def _recording(near: NearCache) -> list[bytes]:
    """The keys `near` is told of from now on, as it applies them (not the flush a tracker
    does as it goes live, which no write caused)."""
    heard: list[bytes] = []
    apply = near.invalidate

    def recorded(keys: list[bytes] | None) -> None:
        heard.extend(keys or [])
        apply(keys)

    near.invalidate = recorded  # type: ignore[method-assign]
    return heard


def redis_cpu_per_push(url: str, raw: redis.Redis, trackers: int, writes: int, batch: int) -> float:
    """µs of redis-server CPU (INFO cpu, user + sys) each push costs it: `writes` SETs under
    a tracked prefix, `batch` to a pipeline, with `trackers` near caches listening, less the
    same with none. Redis sends each tracker one message per event-loop turn with every key
    written in it, so a pipeline's keys share one message: batch 1 is the dearest case."""
    namespace = "cost-" + uuid.uuid4().hex[:6]
    spent = []
    for count in (0, trackers):
        caches = [Refresher(url, namespace=namespace, near_cache=10) for _ in range(count)]
        for cache in caches:
            assert cache.tracker.wait_live(5)
        started = _cpu(raw)
        for first in range(0, writes, batch):
            pipe = raw.pipeline(transaction=False)
            for n in range(first, first + batch):
                pipe.set(f"{namespace}:{{w:[{n}]}}", b"x")
            pipe.execute()
        spent.append(_cpu(raw) - started)
        for cache in caches:  # each drains what it was sent as it closes
            cache.close()
    return (spent[1] - spent[0]) / (writes * trackers) * 1e6


def _cpu(raw: redis.Redis) -> float:
    info = _info(raw, "cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _info(raw: redis.Redis, section: str) -> dict[str, Any]:
    return raw.info(section)


def hit_with_and_without_tracker(url: str, raw: redis.Redis, rounds: int, reads: int) -> list[tuple[float, float]]:
    """Per near-off hit, median over alternating rounds, tracker on then none (the loader's
    epoch fetched by every read): (µs of wall time, µs of redis-server CPU)."""
    tracked, untracked = (Refresher(url, namespace="cost-hits") for _ in range(2))
    untracked.epochs.tracker = None  # what a process that reads too rarely to start it does, at any rate
    loaders = [_loader(tracked, NAME + ".tracked"), _loader(untracked, NAME + ".untracked")]
    for square in loaders:
        square.get(7)
    assert tracked.tracker.wait_live(5)
    times: list[list[tuple[float, float]]] = [[], []]
    for _ in range(rounds):
        for i, square in enumerate(loaders):
            started, cpu = time.perf_counter(), _cpu(raw)
            for _ in range(reads):
                square.get(7)
            spent = _cpu(raw) - cpu
            times[i].append(((time.perf_counter() - started) / reads * 1e6, spent / reads * 1e6))
    tracked.close()
    untracked.close()
    return [(statistics.median(t for t, _ in each), statistics.median(c for _, c in each)) for each in times]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fleetcost", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few seconds, for a smoke test")
    args = parser.parse_args(argv)
    server, broker = RedisServer(), RedisServer()
    server.start()
    broker.start()
    os.environ["REFRESHER_BROKER_URL"] = broker.url  # so the cache's clients are refresher's alone
    raw = redis.Redis.from_url(server.url)
    try:
        for label, (total, tracker) in connections(server.url, raw).items():
            print(f"| connections, {label} | {total} ({tracker} the tracker's) |")
        rate, cost = pings(server.url, raw, 0.5 if args.quick else 5.0)
        print(f"| PINGs a second per Refresher, idle (PING_EVERY = {PING_EVERY} s) | {rate:.1f} |")
        print(f"| redis-server CPU per PING | {cost:.1f} µs |")
        print(f"| pushes per idle tracker for {KEYS} loads + {KEYS} sets elsewhere, each of {TRACKERS} "
              f"| {' / '.join(str(n) for n in pushes(server.url, raw))} |")
        for trackers, batch in ((32, 1), (32, 100)):  # fewer trackers: a signal within the noise of the SETs'
            writes = (200 if args.quick else 10_000) * (10 if batch > 1 else 1)
            cost = redis_cpu_per_push(server.url, raw, trackers, writes, batch)
            print(f"| redis-server CPU per push, {trackers} trackers, {batch} SET(s) a round trip | {cost:.2f} µs |")
        (on, cpu_on), (off, cpu_off) = hit_with_and_without_tracker(server.url, raw, 3 if args.quick else 15,
                                                                     200 if args.quick else 2000)
        print(f"| near-off hit, tracker on / no tracker (epoch fetched per read) | {on:.1f} / {off:.1f} µs "
              f"({off / on:.2f}x) |")
        print(f"| redis-server CPU per near-off hit, tracker on / no tracker | {cpu_on:.1f} / {cpu_off:.1f} µs |")
    finally:
        raw.close()
        server.stop()
        broker.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
