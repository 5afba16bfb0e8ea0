"""The fleet test's parts: reader processes that sweep many keys with `get_many` at a steady
pace, and a look at every Cluster master for keys left behind."""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

import redis

from tests.support.cluster import RedisClusterServers
from tests.support import fleet_loaders
from tests.support.readers import CTX


@dataclass
class SweepReport:
    reads: int = 0
    sweeps: int = 0
    late_sweeps: int = 0  # sweeps that took longer than the interval (a busy machine)
    slowest_sweep: float = 0.0
    first_miss: float | None = None  # seconds after go
    cpu: float = 0.0  # CPU seconds this process used while reading
    wrong: list[str] = field(default_factory=list)  # values for another key, or none at all
    errors: list[str] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)


def _sweeper(keys: list[int], seconds: float, interval: float, delay: float, chunk: int,
             ready: Any, go: Any, out: Any) -> None:
    loader = fleet_loaders.hot  # on the cache this process inherited in REFRESHER_REDIS_URL
    loader.cache.redis.ping()  # connected, the Cluster's slots mapped, before go
    report = SweepReport()
    ready.wait()
    go.wait()
    pace = threading.Event()  # never set: waits until the next sweep is due
    pace.wait(delay)
    started, cpu = time.monotonic(), time.process_time()
    while (now := time.monotonic()) - started < seconds:
        due = now + interval
        for i in range(0, len(keys), chunk):
            part = keys[i:i + chunk]
            try:
                values = loader.get_many(part)
            except Exception:
                report.errors.append(traceback.format_exc(limit=3))
                continue
            report.reads += len(part)
            report.wrong += [f"{n}: {v!r}" for n, v in zip(part, values) if not isinstance(v, dict) or v["n"] != n]
        report.sweeps += 1
        report.slowest_sweep = max(report.slowest_sweep, time.monotonic() - now)
        if report.first_miss is None and loader.cache.stats["miss"] + loader.cache.stats["coalesced"]:
            report.first_miss = now - started
        late = due - time.monotonic()
        if late <= 0:
            report.late_sweeps += 1
        else:
            pace.wait(late)
    report.cpu = time.process_time() - cpu
    loader.cache.flush()
    report.stats = loader.cache.stats.snapshot()
    out.put(report)


def run_sweepers(keys: list[int], processes: int, seconds: float, interval: float, readers_per_key: int = 2,
                 chunk: int = 100, before_go: Callable[[], object] | None = None) -> list[SweepReport]:
    """`processes` reader processes of `fleet_loaders.hot`, released together. The keys are
    dealt into processes / readers_per_key shares; each share is read by that many
    processes (in chunks of `chunk`, one `get_many` each), each once per `interval` for
    `seconds`, half an interval apart. `before_go` runs once every reader is ready (the
    warm-up)."""
    ready = CTX.Barrier(processes + 1)
    go = CTX.Event()
    out = CTX.Queue()
    shares = processes // readers_per_key
    procs = [CTX.Process(target=_sweeper, args=(keys[i % shares::shares], seconds, interval, i // shares * interval
                                                / readers_per_key, chunk, ready, go, out))
             for i in range(processes)]
    for p in procs:
        p.start()
    try:
        ready.wait(timeout=60)
        if before_go is not None:
            before_go()
        go.set()
        reports = [out.get(timeout=60 + seconds) for _ in procs]
    except BaseException:
        for p in procs:
            p.kill()
        raise
    for p in procs:
        p.join(timeout=10)
    return reports


def leftovers(cluster: RedisClusterServers, pattern: str) -> dict[str, int]:
    """Every key matching `pattern` on every live master, with its PTTL (-1: no expiry)."""
    found: dict[str, int] = {}
    for node in cluster.nodes:
        if node.proc is None:
            continue
        client = redis.Redis(host="127.0.0.1", port=node.port)
        try:
            if client.info("replication")["role"] != "master":
                continue
            for key in client.scan_iter(match=pattern, count=1000):
                found[key.decode()] = int(client.pttl(key))
        finally:
            client.close()
    return found
