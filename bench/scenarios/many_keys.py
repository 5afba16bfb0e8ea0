"""4. Many keys: a large keyspace whose refresh windows open together.

The keys are loaded through the ordinary miss path by the reader processes, then read
again once their windows are open, which queues one refresh task per key with no worker
running. Workers (`celery -A workers worker -P solo`, one process each) are then started
against that backlog and their refresh rate is measured over a fixed interval, for one
worker process and then two; what remains queued afterwards is purged. Memory per key
is sampled with MEMORY USAGE for every strategy, and the refresh path is profiled.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import threading
import time
from typing import Any, cast

from tests.support.servers import WorkerProcess

from bench import origin
from bench.context import SUCCEEDED, WRITTEN, Context
from bench.readers import Job
from bench.refresh_profile import Profile, profile_refreshes
from bench.report import Table
from bench.scenarios import Outcome
from bench.strategies import LABELS, NAMES, build
from bench.workloads import MANY

TASK_ENDED = SUCCEEDED + "|" + r"refresher\.refresh\[\S+\] raised"
SETTLE_S = 0.3  # after the workers are ready, before the measured interval begins
PUBLISH_BATCH = 1000


def run(ctx: Context) -> Outcome:
    from bench import loaders

    s = ctx.scale
    loader = loaders.many
    ctx.worker.stop()  # from here on, only the workers started below may take refresh tasks
    keys = tuple(f"k{i}" for i in range(s.many_keys))
    shares = [keys[i :: s.processes] for i in range(s.processes)]
    spec = ctx.spec("refresher", MANY.name)

    throughput = Table(
        f"4a. Many keys: {s.many_keys:,} keys, refresh throughput of `celery -A workers worker -P solo`",
        ["step", "processes", "keys or tasks", "errors", "seconds", "per second"],
        notes=["Errors: reads that raised, or worker tasks that ended without writing a value. "
               "Load: first reads through the miss path (lock, loader, commit) by "
               f"{s.processes} reader processes x {s.load_threads} threads. Publish: reads inside the "
               "refresh window, each asking for one refresh task, no worker running. Worker rates are "
               f"measured over {s.drain_seconds:g} s of draining that backlog."],
    )
    t0 = time.monotonic()
    reports, _ = ctx.pool.run([Job(spec, share, s.load_threads) for share in shares])
    loaded_s = time.monotonic() - t0
    errors = _report_errors("load", reports)
    throughput.add("load (miss path)", s.processes, s.many_keys - errors, errors, loaded_s, s.many_keys / loaded_s)

    # Every key's window is open once the last one loaded is old enough.
    time.sleep((loader.settings.ttl_ms - loader.settings.window_ms) / 1000 + 0.1)
    t0 = time.monotonic()
    reports, _ = ctx.pool.run([Job(spec, share, 1, batch=PUBLISH_BATCH) for share in shares])
    published_s = time.monotonic() - t0
    errors = _report_errors("publish", reports)
    tasks = sum(r.counters.get("background", 0) for r in reports)
    throughput.add("publish refresh tasks", s.processes, tasks, errors, published_s, tasks / published_s)

    rates = {}
    for workers in (1, 2):
        rates[workers], refreshed, unwritten, elapsed = _drain(ctx, workers, s.drain_seconds)
        throughput.add(f"worker refreshes ({workers} worker process{'es' if workers > 1 else ''})",
                       workers, refreshed, unwritten, elapsed, rates[workers])
    left = ctx.control.llen(loader.cache.queue)
    throughput.notes.append(f"{left:,} tasks were still queued after the measurements (purged); "
                            f"2 workers / 1 worker = {rates[2] / rates[1]:.2f}x on {os.cpu_count()} CPUs.")
    ctx.control.delete(loader.cache.queue)

    memory = _memory(ctx, keys)
    warm, profiled = keys[: s.profile_keys], keys[s.profile_keys : 2 * s.profile_keys]
    profile = profile_refreshes(loader.name, warm, profiled)
    return Outcome([throughput, memory, profile.table], findings=[_finding(profile, rates[1])])


def _finding(profile: Profile, worker_rate: float) -> str:
    """The first bottleneck, read off the figures of this run."""
    per_task_ms = 1000 / worker_rate
    inside = profile.refresh_ms / per_task_ms
    first = "Celery's per-task handling" if inside < 0.5 else f"inside refresh_key: {profile.top_step}"
    return (
        f"**First bottleneck of the refresh path: {first}.** One worker process refreshes "
        f"{worker_rate:,.0f} keys/s ({per_task_ms:.2f} ms per task); refresh_key itself takes "
        f"{profile.refresh_ms:.2f} ms of that ({inside:.0%}); the rest ({1 - inside:.0%}) is spent outside it, "
        "in Celery's handling of each task message. Inside refresh_key, "
        f"{profile.socket_share:.0%} of the time is waiting on Redis over {profile.round_trips:.1f} round "
        f"trips per refresh; the largest single step is {profile.top_step} ({profile.top_share:.0%})."
    )


def _drain(ctx: Context, workers: int, seconds: float) -> tuple[float, int, int, float]:
    """Start `workers` worker processes on the backlog; refreshes/s over `seconds` once all
    are up, and how many of their tasks did not end in a written value."""
    procs = [WorkerProcess(ctx.redis_url, loaders="bench.loaders", pool="solo") for _ in range(workers)]
    starters = [threading.Thread(target=p.start) for p in procs]
    for t in starters:
        t.start()
    for t in starters:
        t.join()
    try:
        time.sleep(SETTLE_S)
        before, t0 = origin.calls(MANY.name), time.monotonic()
        time.sleep(seconds)
        refreshed, elapsed = origin.calls(MANY.name) - before, time.monotonic() - t0
    finally:
        for p in procs:
            p.stop()
    finished = sum(p.log.count(TASK_ENDED) for p in procs if p.log is not None)
    written = sum(p.log.count(WRITTEN) for p in procs if p.log is not None)
    return refreshed / elapsed, refreshed, finished - written, elapsed


def _memory(ctx: Context, loaded: tuple[str, ...]) -> Table:
    s = ctx.scale
    table = Table(
        f"4b. Memory per key: MEMORY USAGE of the key holding each value, {s.memory_sample:,} keys per strategy",
        ["strategy", "MEMORY USAGE bytes", "JSON value bytes", "above the JSON", "vs naive"],
        notes=["refresher (XFetch) stores the same envelope as Window. refresher's lock and pending "
               "marker exist only while a refresh is asked for or running."],
    )
    step = max(1, len(loaded) // s.memory_sample)
    overhead: dict[str, float] = {}
    for name in NAMES:
        if name == "refresher-xfetch":
            continue
        strategy = build(ctx.spec(name, MANY.name))
        sample = loaded[::step][: s.memory_sample] if name == "refresher" else [f"mem-{name}-{i}" for i in range(s.memory_sample)]
        usage, sizes = [], []
        for key in sample:
            value: Any = strategy.get(key)
            sizes.append(len(json.dumps(value, separators=(",", ":"))))
            usage.append(cast(int, ctx.control.memory_usage(strategy.stored_key(key), samples=0)))
        strategy.flush()
        strategy.close()
        overhead[name] = statistics.mean(usage) - statistics.mean(sizes)
        table.add(LABELS[name], statistics.mean(usage), statistics.mean(sizes), overhead[name],
                  f"{overhead[name] - overhead['naive']:+.0f}")
    return table


def _report_errors(step: str, reports: list[Any]) -> int:
    """Print the first error of a step in full; return how many there were."""
    errors = [e for r in reports for e in r.errors]
    if errors:
        print(f"many keys/{step}: {len(errors)} errors, the first:\n{errors[0]}", file=sys.stderr)
    return len(errors)
