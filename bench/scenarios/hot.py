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
import math
import os
import statistics
import sys
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
    return HotOutcome([table, leads_table], _targets(measured, s.hot_periods), series=series, measured=measured)


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
        f"refresher aget served {r['reads']:,.0f} at {per_read['refresher-async']:.2f} (every aget is its own GET: "
        f"refresher coalesces misses, not hits); naive {m['naive-async']['reads']:,.0f} at "
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
