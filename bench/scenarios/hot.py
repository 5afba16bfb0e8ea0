"""2. Hot key: readers hammer one key across several expiries.

The key is warmed just before the readers are released, so every strategy starts from
the same fresh value. Origin calls are logged with their times, which gives the plot
and, for each refresh, how long before the current value's expiry it started.

`run` reads with threads (the sync strategies), `run_async` with asyncio tasks, one event
loop per process (2c: refresher's `aget` against the asyncio strategies).
"""

from __future__ import annotations

import asyncio
import bisect
import cProfile
import math
import os
import pstats
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Sequence

from bench import origin
from bench.context import SUCCEEDED, WRITTEN, Context
from bench.measure import latency_ms
from bench.readers import SLOW_S, Job, Report
from bench.report import Table, Target
from bench.scenarios import Outcome
from bench.strategies import ASYNC_NAMES, LABELS, NAMES, Spec, Strategy, build, build_async
from bench.workloads import hot

EPISODE_GAP_S = 0.1  # slow reads that began less than this apart are one episode
PROFILE_THREADS = 32  # 2d: threads reading the hot key in the bench's own process
PROFILE_READS = 1000  # per thread
# 2d's parts of a read, as in 3e: (label, functions (file suffix, name) whose cumulative times add up to it).
PROFILE_PARTS: dict[str, tuple[tuple[str, tuple[tuple[str, str], ...]], ...]] = {
    "refresher": (
        ("the GET in redis-py (execute_command)", (("redis/client.py", "execute_command"),)),
        ("the read decision (core/read.py `after_get`)", (("refresher/core/read.py", "after_get"),)),
        ("in the refresh window: the steps (SyncDriver.run: the per-process memo, the claim, the hand-over)",
         (("refresher/io/drivers/sync.py", "run"),)),
        ("arguments and keys (calls.py)", (("refresher/core/calls.py", "__call__"),)),
    ),
    "naive": (
        ("the GET in redis-py (execute_command)", (("redis/client.py", "execute_command"),)),
        ("json.loads", (("json/__init__.py", "loads"),)),
    ),
}


@dataclass
class Series:
    """Origin calls of one strategy's run, in seconds since the readers were released."""

    label: str
    starts: list[float]


@dataclass
class HotOutcome(Outcome):
    series: list[Series] = field(default_factory=list)
    # per strategy name: calls, redundant, tasks (background refreshes), inline, slow, p99, written
    measured: dict[str, dict[str, float]] = field(default_factory=dict)
    figure: str = "Hot key: origin calls over time, one line per strategy"
    profile: Table | None = None  # 2d: where a read's CPU goes under PROFILE_THREADS threads


@dataclass
class Episode:
    """Slow reads that began less than EPISODE_GAP_S apart, in seconds since the release."""

    first: float
    last: float
    reads: int
    processes: set[int]
    refresh_ms: float | None  # how long after the nearest refresh's start it began (negative: before), if within 0.5 s

    def describe(self, processes: int) -> str:
        near = "" if self.refresh_ms is None else f", {self.refresh_ms:+.0f} ms from a refresh's start"
        return (f"{self.reads} at {self.first:.2f} s ({len(self.processes)} of {processes} processes{near})")


def slow_episodes(reports: Sequence[Report], released: float, refreshes: Sequence[float]) -> list[Episode]:
    """Group the slow reads of all reader processes into episodes, each placed against the
    nearest refresh (origin call after the warm-up): what happened when reads were slow."""
    episodes: list[Episode] = []
    for at, process in sorted((t - released, i) for i, r in enumerate(reports) for t in r.slow_at):
        if episodes and at - episodes[-1].last < EPISODE_GAP_S:
            episode = episodes[-1]
            episode.last, episode.reads = at, episode.reads + 1
            episode.processes.add(process)
            continue
        nearest = min((at - (start - released) for start in refreshes), key=abs, default=None)
        episodes.append(Episode(at, at, 1, {process}, nearest * 1000 if nearest is not None and abs(nearest) < 0.5 else None))
    return episodes


def refresh_leads_ms(calls: list[tuple[float, float]], ttl: float) -> list[float]:
    """For each call after the first: how long before the cached value's expiry it began.
    The cached value is the one written by the latest call that had ended by then;
    negative means the value had already expired."""
    ends = sorted(end for _, end in calls)
    leads = []
    for start, _ in calls[1:]:
        written = bisect.bisect_right(ends, start)
        if written:
            leads.append((ends[written - 1] + ttl - start) * 1000)
    return leads


def redundant_reloads(calls: list[tuple[float, float]], ttl: float) -> int:
    """Reloads that began while another reload of the key was still running, or within
    10% of the TTL after one had finished: work a single refresher per expiry would not do."""
    ends = sorted(end for _, end in calls)
    latest_end = -math.inf  # of the calls begun so far (calls are in start order)
    count = 0
    for start, end in calls:
        finished = bisect.bisect_right(ends, start)
        if latest_end > start or (finished and start - ends[finished - 1] < 0.1 * ttl):
            count += 1
        latest_end = max(latest_end, end)
    return count


def _table(title: str, readers: str, seconds: float, ttl: float, periods: float, delay: float) -> Table:
    return Table(
        f"{title}: {readers} read one key for {seconds:g} s "
        f"(TTL {ttl:g} s = {periods:g} periods, loader {delay * 1000:.0f} ms)",
        ["strategy", "origin calls", "redundant reloads", "background refreshes", "inline loads", "reads", "errors",
         f"reads > {SLOW_S * 1000:.0f} ms", "p50 ms", "p99 ms", "max ms", "refresh lead ms (median)",
         "Redis cmds per read"],
        notes=["Origin calls include the warm-up load. Redundant reloads began while another reload of the "
               "key was running or within 10% of the TTL after one finished. Background refreshes: refresh "
               "tasks published (refresher), regeneration threads started (dogpile.cache, probabilistic), "
               "early recompute tasks started (cashews early). "
               "Refresh lead: how long before the cached value's expiry each reload began (negative: after it). "
               "Redis cmds per read: every command the bench's Redis ran during the run, from every client, "
               "over the reads."],
    )


async def _awarm(spec: Spec, key: str) -> None:
    strategy = build_async(spec)
    try:
        await strategy.warm()
        await strategy.get(key)
        await strategy.flush()
    finally:
        await strategy.close()
        await origin.aclose()


def _measure(ctx: Context, names: Sequence[str], readers: int, seconds: float, key_suffix: str,
             table: Table, leads_table: Table | None
             ) -> tuple[list[Series], dict[str, dict[str, float]], dict[str, list[Episode]]]:
    """Each strategy's run on a key of its own, warmed just before the readers are released."""
    s = ctx.scale
    workload = hot()
    series: list[Series] = []
    measured: dict[str, dict[str, float]] = {}
    episodes: dict[str, list[Episode]] = {}
    for name in names:
        key = f"hot-{name}{key_suffix}"
        spec = ctx.spec(name, workload.name)
        warmer = None if spec.is_async else build(spec)

        def warm(spec: Spec = spec, key: str = key, warmer: Strategy | None = warmer) -> None:
            if warmer is None:  # an asyncio strategy: warmed on an event loop of its own, in this process
                asyncio.run(_awarm(spec, key))
            else:
                warmer.get(key)

        finished_before = ctx.worker_count(SUCCEEDED)
        written_before = ctx.worker_count(WRITTEN)
        commands = ctx.redis_commands()
        reports, released = ctx.pool.run([Job(spec, (key,), readers, seconds)] * s.processes, before_go=warm)
        commands = ctx.redis_commands() - commands
        if warmer is not None:
            warmer.flush()
            warmer.close()
        latencies = [x for r in reports for x in r.latencies]
        errors = [e for r in reports for e in r.errors]
        if errors:
            print(f"hot/{name}: {len(errors)} errors, the first:\n{errors[0]}", file=sys.stderr)
        background = sum(r.counters.get("background", 0) for r in reports)
        inline = sum(r.counters.get("inline", 0) for r in reports)
        if name.startswith("refresher") and not ctx.await_worker(finished_before + background):
            print(f"hot/{name}: the worker did not finish all {background} tasks", file=sys.stderr)
        calls = origin.call_times(key)
        leads = refresh_leads_ms(calls, workload.ttl)
        p50, p99, worst = latency_ms(latencies)
        slow = sum(1 for x in latencies if x > SLOW_S)
        redundant = redundant_reloads(calls, workload.ttl)
        table.add(LABELS[name], len(calls), redundant, background, inline,
                  len(latencies), len(errors), slow, p50, p99, worst, statistics.median(leads) if leads else float("nan"),
                  commands / max(1, len(latencies)))
        series.append(Series(LABELS[name], [start - released for start, _ in calls]))
        measured[name] = {"calls": len(calls), "redundant": redundant, "tasks": background, "inline": inline,
                          "slow": slow, "p99": p99, "written": ctx.worker_count(WRITTEN) - written_before,
                          "p50": p50, "reads": len(latencies), "commands": commands}
        episodes[name] = slow_episodes(reports, released, [start for start, _ in calls[1:]])
        if leads_table is not None and name.startswith("refresher"):
            leads_table.add(LABELS[name], len(leads), statistics.median(leads) if leads else float("nan"),
                            min(leads, default=float("nan")), max(leads, default=float("nan")),
                            ", ".join(f"{x:.0f}" for x in leads))
    return series, measured, episodes


def run(ctx: Context, key_suffix: str = "") -> HotOutcome:
    """`key_suffix` gives a repeated run keys (and origin call logs) of its own."""
    s = ctx.scale
    workload = hot()
    seconds = s.hot_ttl * s.hot_periods
    table = _table("2. Hot key", f"{s.processes} processes x {s.hot_threads} threads", seconds, workload.ttl,
                   s.hot_periods, workload.delay)
    leads_table = Table(
        "2b. Refresher Window vs XFetch: how early each refresh began, ms before the value's expiry",
        ["policy", "refreshes", "median", "min", "max", "each refresh"],
    )
    series, measured, _ = _measure(ctx, NAMES, s.hot_threads, seconds, key_suffix, table, leads_table)
    profile, finding = _profile(ctx, key_suffix, measured)
    return HotOutcome([table, leads_table, profile], _targets(measured, s.hot_periods), findings=[finding],
                      series=series, measured=measured, profile=profile)


def _threads(strategy: Strategy, key: str, profiled: bool) -> tuple[float, list[float], list[cProfile.Profile]]:
    """PROFILE_THREADS threads read `key` PROFILE_READS times each, released together: this
    process's CPU seconds, every read's latency, and each thread's profile (if `profiled`)."""
    latencies: list[float] = []
    profiles: list[cProfile.Profile] = []
    go = threading.Barrier(PROFILE_THREADS + 1)

    def read() -> None:
        mine = []
        profiler = cProfile.Profile(time.thread_time) if profiled else None  # this thread's CPU, not the wall
        go.wait()
        if profiler is not None:
            profiler.enable()
        for _ in range(PROFILE_READS):
            t0 = time.perf_counter()
            strategy.get(key)
            mine.append(time.perf_counter() - t0)
        if profiler is not None:
            profiler.disable()
            profiles.append(profiler)
        latencies.extend(mine)

    threads = [threading.Thread(target=read) for _ in range(PROFILE_THREADS)]
    for t in threads:
        t.start()
    cpu = time.process_time()
    go.wait()
    for t in threads:
        t.join()
    return time.process_time() - cpu, latencies, profiles


def _profile(ctx: Context, key_suffix: str, measured: dict[str, dict[str, float]]) -> tuple[Table, str]:
    """2d: refresher and naive read the hot key from PROFILE_THREADS threads in this process,
    once unprofiled (CPU per read, latency) and once with a cProfile per thread (where it goes)."""
    table = Table(
        f"2d. Hot key profile: {PROFILE_THREADS} threads in one process, {PROFILE_READS:,} reads each of the hot "
        "key, where a read's CPU goes",
        ["strategy", "part", "µs per read (profiled)", "share"],
        notes=["Each thread runs under its own cProfile timed by its own CPU clock (time.thread_time: cumulative "
               "CPU of each part's call stack, added over the threads, waits for the GIL left out); cProfile slows "
               "everything down, Python calls and its clock most: compare the shares. The unprofiled "
               "run of the same reads gives the CPU per read and the latencies in the finding below."],
    )
    figures: dict[str, tuple[float, float, float]] = {}
    for name in ("refresher", "naive"):
        strategy = build(ctx.spec(name, hot().name))
        strategy.warm()
        key = f"hot-profile-{name}{key_suffix}"
        strategy.get(key)  # loaded once, refreshed by the worker from then on
        cpu, latencies, _ = _threads(strategy, key, profiled=False)
        p50, p99, _ = latency_ms(latencies)
        figures[name] = (cpu / len(latencies) * 1e6, p50, p99)
        _, _, profiles = _threads(strategy, key, profiled=True)
        stats = pstats.Stats(profiles[0])
        for more in profiles[1:]:
            stats.add(more)
        reads = PROFILE_THREADS * PROFILE_READS

        def us(functions: tuple[tuple[str, str], ...], stats: pstats.Stats = stats) -> float:
            entries = stats.stats  # type: ignore[attr-defined]
            return float(sum(v[3] for path, function in functions for (file, _, fn), v in entries.items()
                             if file.endswith(path) and fn == function)) / reads * 1e6

        total = us((("bench/strategies/refresher.py" if name == "refresher" else "bench/strategies/naive.py", "get"),))
        parts = [(label, us(functions)) for label, functions in PROFILE_PARTS[name]]
        for label, took in [*parts, ("the rest", total - sum(t for _, t in parts)), ("a read, all of it", total)]:
            table.add(LABELS[name], label, took, f"{took / total:.0%}")
        strategy.flush()
        strategy.close()
    (r_cpu, r_p50, r_p99), (n_cpu, n_p50, n_p99) = figures["refresher"], figures["naive"]
    r, n = measured["refresher"], measured["naive"]
    finding = (
        f"**Hot key, where a read's CPU goes (2d).** With {PROFILE_THREADS} threads in one process on "
        f"{os.cpu_count()} CPUs, a read's latency is mostly its wait for the GIL and a CPU, so the CPU each read "
        f"costs decides the p99. Unprofiled, a refresher read cost {r_cpu:.1f} µs of this process's CPU "
        f"(p50 {r_p50:.2f} ms, p99 {r_p99:.2f} ms) and a naive read {n_cpu:.1f} µs (p50 {n_p50:.2f} ms, "
        f"p99 {n_p99:.2f} ms). In table 2 (4 processes x 8 threads) refresher's p99 was {r['p99']:.2f} ms, "
        f"naive's {n['p99']:.2f} ms ({r['p99'] / n['p99']:.2f}x), over {r['reads']:,.0f} and {n['reads']:,.0f} reads."
    )
    return table, finding


def run_async(ctx: Context, key_suffix: str = "") -> Outcome:
    s = ctx.scale
    workload = hot()
    periods = s.async_hot_periods
    seconds = s.hot_ttl * periods
    table = _table("2c. Async hot key", f"{s.processes} processes x {s.hot_threads} asyncio tasks (one event loop "
                   "per process)", seconds, workload.ttl, periods, workload.delay)
    table.notes.append("The `async def` loader awaits the origin (`asyncio.sleep`); refresher's refreshes are "
                       "done by the same `celery -A workers worker -P solo`, on its event loop.")
    _, m, episodes = _measure(ctx, ASYNC_NAMES, s.hot_threads, seconds, key_suffix, table, None)
    r, early = m["refresher-async"], m["cashews-early"]
    targets = [
        Target("hot (async)", f"refresher aget: origin calls <= TTL periods + 1 ({periods:g} + 1)",
               f"{r['calls']:.0f}", r["calls"] <= periods + 1),
        Target("hot (async)", f"refresher aget: 0 reads > {SLOW_S * 1000:.0f} ms", f"{r['slow']:.0f}", r["slow"] == 0),
        Target("hot (async)", "refresher aget p99 <= cashews early p99",
               f"{r['p99']:.2f} ms vs {early['p99']:.2f} ms ({r['p99'] / early['p99']:.2f}x)", r["p99"] <= early["p99"]),
    ]
    return Outcome([table], targets, findings=_async_findings(m, episodes, s.processes, s.hot_threads, seconds))


def _async_findings(m: dict[str, dict[str, float]], episodes: dict[str, list[Episode]], processes: int,
                    readers: int, seconds: float) -> list[str]:
    r, early = m["refresher-async"], m["cashews-early"]
    per_read = {name: v["commands"] / max(1.0, v["reads"]) for name, v in m.items()}
    out = [
        f"**Async hot key, where the time goes.** Reads are a closed loop: each task reads again as soon as "
        f"its read returns, {processes} processes on {os.cpu_count()} CPUs, so a read's latency is mostly its "
        f"wait for a CPU, and a strategy that makes fewer Redis round trips per read serves more reads, faster. "
        f"cashews early served {early['reads']:,.0f} reads in {seconds:g} s at {per_read['cashews-early']:.2f} Redis "
        f"commands per read (concurrent calls of one key in a process share one call: `protected=True`); "
        f"refresher aget served {r['reads']:,.0f} at {per_read['refresher-async']:.2f} (concurrent agets of one key "
        f"on a loop share the GET in flight); naive {m['naive-async']['reads']:,.0f} at "
        f"{per_read['naive-async']:.2f}. p50 / p99: refresher aget {r['p50']:.2f} / {r['p99']:.2f} ms, "
        f"cashews early {early['p50']:.2f} / {early['p99']:.2f} ms."
    ]
    for name in ("refresher-async", "cashews-early", "naive-async"):
        if episodes[name]:
            shown = episodes[name][:6]
            more = f"; and {len(episodes[name]) - len(shown)} more" if len(episodes[name]) > len(shown) else ""
            out.append(f"{LABELS[name]}: {m[name]['slow']:.0f} reads over {SLOW_S * 1000:.0f} ms, in "
                       f"{len(episodes[name])} episode(s): " + "; ".join(e.describe(processes) for e in shown)
                       + more + ".")
    if any(episodes.values()):
        out.append("Reading the episodes: with every task always mid-read, a reader process that stops for more "
                   f"than {SLOW_S * 1000:.0f} ms makes as many slow reads as it has tasks ({readers}), whatever the strategy. An episode in "
                   "every process at once, away from any refresh, came from outside the readers (the machine's "
                   "other work, or Redis); one in a single process is that process's own; one in the first "
                   "tenth of a second is the tasks opening their connections (each pool holds one when the "
                   "readers are released); naive's are its expiries.")
    return out


def _targets(m: dict[str, dict[str, float]], periods: float) -> list[Target]:
    r, naive = m["refresher"], m["naive"]
    refreshes = r["calls"] - 1  # all but the warm-up load
    return [
        Target("hot", f"origin calls <= TTL periods + 1 ({periods:g} + 1)", f"{r['calls']:.0f}",
               r["calls"] <= periods + 1),
        Target("hot", "exactly 1 task per window (tasks = refreshes written = reloads, no inline load)",
               f"{r['tasks']:.0f} tasks, {r['written']:.0f} written, {refreshes:.0f} reloads, {r['inline']:.0f} inline",
               r["tasks"] == r["written"] == refreshes and r["inline"] == 0),
        Target("hot", f"0 reads > {SLOW_S * 1000:.0f} ms", f"{r['slow']:.0f}", r["slow"] == 0),
        Target("hot", "p99 <= naive p99", f"{r['p99']:.2f} ms vs {naive['p99']:.2f} ms", r["p99"] <= naive["p99"]),
    ]
