"""2. Hot key: readers hammer one key across several expiries.

The key is warmed just before the readers are released, so every strategy starts from
the same fresh value. Origin calls are logged with their times, which gives the plot
and, for each refresh, how long before the current value's expiry it started.
"""

from __future__ import annotations

import bisect
import math
import statistics
import sys
from dataclasses import dataclass, field

from bench import origin
from bench.context import SUCCEEDED, WRITTEN, Context
from bench.measure import latency_ms
from bench.readers import Job
from bench.report import Table, Target
from bench.scenarios import Outcome
from bench.strategies import LABELS, NAMES, build
from bench.workloads import hot

SLOW_S = 0.050


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


def run(ctx: Context, key_suffix: str = "") -> HotOutcome:
    """`key_suffix` gives a repeated run keys (and origin call logs) of its own."""
    s = ctx.scale
    workload = hot()
    seconds = s.hot_ttl * s.hot_periods
    table = Table(
        f"2. Hot key: {s.processes} processes x {s.hot_threads} threads read one key for {seconds:g} s "
        f"(TTL {workload.ttl:g} s = {s.hot_periods:g} periods, loader {workload.delay * 1000:.0f} ms)",
        ["strategy", "origin calls", "redundant reloads", "background refreshes", "inline loads", "reads", "errors",
         f"reads > {SLOW_S * 1000:.0f} ms", "p50 ms", "p99 ms", "max ms", "refresh lead ms (median)"],
        notes=["Origin calls include the warm-up load. Redundant reloads began while another reload of the "
               "key was running or within 10% of the TTL after one finished. Background refreshes: refresh "
               "tasks published (refresher), regeneration threads started (dogpile.cache, probabilistic). "
               "Refresh lead: how long before the cached value's expiry each reload began (negative: after it)."],
    )
    leads_table = Table(
        "2b. Refresher Window vs XFetch: how early each refresh began, ms before the value's expiry",
        ["policy", "refreshes", "median", "min", "max", "each refresh"],
    )
    series: list[Series] = []
    measured: dict[str, dict[str, float]] = {}
    for name in NAMES:
        key = f"hot-{name}{key_suffix}"
        spec = ctx.spec(name, workload.name)
        warmer = build(spec)
        finished_before = ctx.worker_count(SUCCEEDED)
        written_before = ctx.worker_count(WRITTEN)
        reports, released = ctx.pool.run([Job(spec, (key,), s.hot_threads, seconds)] * s.processes,
                                         before_go=lambda: warmer.get(key))
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
                  len(latencies), len(errors), slow, p50, p99, worst, statistics.median(leads) if leads else float("nan"))
        series.append(Series(LABELS[name], [start - released for start, _ in calls]))
        measured[name] = {"calls": len(calls), "redundant": redundant, "tasks": background, "inline": inline,
                          "slow": slow, "p99": p99, "written": ctx.worker_count(WRITTEN) - written_before}
        if name.startswith("refresher"):
            leads_table.add(LABELS[name], len(leads), statistics.median(leads) if leads else float("nan"),
                            min(leads, default=float("nan")), max(leads, default=float("nan")),
                            ", ".join(f"{x:.0f}" for x in leads))
    return HotOutcome([table, leads_table], _targets(measured, s.hot_periods), series=series, measured=measured)


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
