"""4. Many keys: a large keyspace whose refresh windows open together.

The keys are loaded through the ordinary miss path by the reader processes, then read
again once their windows are open, which queues a refresh for every key with no worker
running (the readers' publishers, with a backlog, send several keys per task). Workers
(`celery -A workers worker -P solo`, one process each) are then started against that
backlog and their refresh rate is measured over a fixed interval, for one worker process
and then two; what remains queued afterwards is purged. Then one worker process drains,
in turn, one-key tasks, batches and no-op tasks that the bench queues itself, for the
refresh throughput per process. Memory per key is sampled with MEMORY USAGE for every
strategy, and the refresh path is profiled.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import threading
import time
from typing import Any, Callable, cast

from tests.support.servers import WorkerProcess

from refresher.io.publish import REFRESH_MANY_TASK, REFRESH_TASK, Publisher

from bench import origin
from bench.context import Context
from bench.noop import NOOP_TASK
from bench.readers import Job
from bench.refresh_profile import Profile, profile_refreshes
from bench.report import Table, Target
from bench.scenarios import Outcome
from bench.strategies import LABELS, NAMES, build
from bench.workloads import MANY

# The worker's line per refreshed key (refresher.refresh), whatever the task carried it.
KEY_ENDED = r"loader=\S+ key=\S+ refresh (?:\w+ in |raised )"
KEY_WRITTEN = r"loader=\S+ key=\S+ refresh written in "
# Per-process throughput (4d): each kind of task, and the most one worker process could drain
# per second of it (what is queued for it: it must not run dry during the measurement).
KINDS = (("one key per task (refresher.refresh)", 1, 2_000),
         (f"{Publisher.BATCH} keys per task (refresher.refresh_many)", Publisher.BATCH, 6_000),
         ("no-op task (bench.noop), one per message", 0, 3_000))
TARGET_RATIO = 3.0
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
               "refresh window, each asking for a refresh, no worker running (tasks: keys asked for; a "
               "publisher with a backlog sends several per task). Worker rates are "
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
        rates[workers], refreshed, unwritten, elapsed = _drain(ctx, workers, s.drain_seconds, _refreshed)
        throughput.add(f"worker refreshes ({workers} worker process{'es' if workers > 1 else ''})",
                       workers, refreshed, unwritten, elapsed, rates[workers])
    left = ctx.control.llen(loader.cache.queue)
    throughput.notes.append(f"{left:,} tasks were still queued after the measurements (purged); "
                            f"2 workers / 1 worker = {rates[2] / rates[1]:.2f}x on {os.cpu_count()} CPUs.")
    ctx.control.delete(loader.cache.queue)

    per_process, target, one_key_rate = _per_process(ctx, keys)
    memory = _memory(ctx, keys)
    warm, profiled = keys[: s.profile_keys], keys[s.profile_keys : 2 * s.profile_keys]
    profile = profile_refreshes(loader.name, warm, profiled, keys[2 * s.profile_keys : 3 * s.profile_keys],
                                Publisher.BATCH)
    return Outcome([throughput, per_process, memory, profile.table], targets=[target],
                   findings=[_finding(profile, one_key_rate)])


def _per_process(ctx: Context, keys: tuple[str, ...]) -> tuple[Table, Target, float]:
    """One worker process draining, in turn, one-key refresh tasks, batches of keys and
    no-op tasks, each queued by the bench itself (every key due: sent with no `seen`,
    enqueued after its last write), measured over the same interval."""
    from bench import loaders

    s, loader = ctx.scale, loaders.many
    queue, app = loader.cache.queue, loader.cache.publisher.app
    table = Table(
        f"4d. Refresh throughput per worker process: one `celery -A workers worker -P solo`, "
        f"{s.drain_seconds:g} s per kind of task",
        ["tasks", "keys per task", "queued", "keys refreshed (no-op: tasks run)", "errors", "seconds",
         "per second", "vs one key per task", "vs no-op tasks"],
    )
    rates: dict[int, float] = {}
    rows = []
    for label, per_task, ceiling in KINDS:
        ctx.control.delete(queue)
        count = min(len(keys), int(ceiling * s.drain_seconds))
        enqueued, sent = time.time(), 0
        with app.producer_or_acquire() as producer:
            for start in range(0, count, max(per_task, 1)):
                chunk = keys[start : start + max(per_task, 1)]
                items: list[list[Any]] = [[loader.name, [key], {}, enqueued, None] for key in chunk]
                name, args = ((NOOP_TASK, []) if per_task == 0 else (REFRESH_TASK, items[0]) if per_task == 1
                              else (REFRESH_MANY_TASK, [items]))
                app.send_task(name, args=args, queue=queue, producer=producer, ignore_result=True)
                sent += 1
        queued = ctx.control.llen(queue)

        def ran() -> int:
            return queued - ctx.control.llen(queue)

        rates[per_task], done, unwritten, elapsed = _drain(ctx, 1, s.drain_seconds, _refreshed if per_task else ran)
        rows.append((label, per_task or "—", f"{sent:,} tasks", done, unwritten, elapsed, rates[per_task]))
    ctx.control.delete(queue)
    one, batched, noop = rates[1], rates[Publisher.BATCH], rates[0]
    for row in rows:
        table.add(*row, f"{row[-1] / one:.2f}x", f"{row[-1] / noop:.2f}x")
    table.notes.append(
        "No-op tasks run is what left the queue (prefetch multiplier 1). A worker logs one line per refreshed key "
        "at INFO, as it does by default, in every row. The one-key and no-op rows bound what one task per key "
        "can reach; batches are what a publisher with a backlog sends."
    )
    target = Target("many keys", f"refreshes per worker process >= {TARGET_RATIO:g}x one key per task",
                    f"{batched:,.0f}/s vs {one:,.0f}/s ({batched / one:.2f}x; {batched / noop:.2f}x no-op tasks)",
                    batched >= TARGET_RATIO * one)
    return table, target, one


def _refreshed() -> int:
    return origin.calls(MANY.name)


def _finding(profile: Profile, worker_rate: float) -> str:
    """The first bottleneck of one key per task, read off the figures of this run."""
    per_task_ms = 1000 / worker_rate
    inside = profile.refresh_ms / per_task_ms
    first = "Celery's per-task handling" if inside < 0.5 else f"inside refresh_key: {profile.top_step}"
    return (
        f"**First bottleneck of the refresh path, one key per task: {first}.** One worker process refreshes "
        f"{worker_rate:,.0f} keys/s sent one per task (4d; {per_task_ms:.2f} ms per task); refresh_key itself takes "
        f"{profile.refresh_ms:.2f} ms of that ({inside:.0%}); the rest ({1 - inside:.0%}) is spent outside it, "
        "in Celery's handling of each task message. Inside refresh_key, "
        f"{profile.socket_share:.0%} of the time is waiting on Redis over {profile.round_trips:.1f} round "
        f"trips per refresh ({profile.batched_round_trips:.2f} per key in batches of {Publisher.BATCH}); "
        f"the largest single step is {profile.top_step} ({profile.top_share:.0%})."
    )


def _drain(ctx: Context, workers: int, seconds: float, progress: Callable[[], int]) -> tuple[float, int, int, float]:
    """Start `workers` worker processes on the backlog; `progress` (refreshes, or tasks run)
    per second over `seconds` once all are up, and how many of the keys they refreshed did
    not end in a written value."""
    procs = [WorkerProcess(ctx.redis_url, loaders="bench.loaders,bench.noop", pool="solo") for _ in range(workers)]
    starters = [threading.Thread(target=p.start) for p in procs]
    for t in starters:
        t.start()
    for t in starters:
        t.join()
    try:
        time.sleep(SETTLE_S)
        before, t0 = progress(), time.monotonic()
        time.sleep(seconds)
        refreshed, elapsed = progress() - before, time.monotonic() - t0
    finally:
        for p in procs:
            p.stop()
    finished = sum(p.log.count(KEY_ENDED) for p in procs if p.log is not None)
    written = sum(p.log.count(KEY_WRITTEN) for p in procs if p.log is not None)
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
