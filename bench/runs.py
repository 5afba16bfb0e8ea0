"""`python -m bench --only hot --runs N`: the hot-key scenario N times in one invocation, for
the figures that move from run to run (origin calls, redundant reloads), as one section of
docs/benchmarks.md (issue 7)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from bench.report import Table
from bench.scenarios.hot import HotOutcome
from bench.strategies import LABELS

TITLE = "Redundant reloads across runs (issue 7)"
REFRESHERS = ("refresher", "refresher-xfetch")
BASELINES = ("naive", "lock-poll", "probabilistic", "dogpile.cache")


@dataclass
class HotRun:
    outcome: HotOutcome
    seconds: float  # wall time of the run, all six strategies
    load: tuple[float, float]  # 1-minute load average at its start and end


def tables(runs: Sequence[HotRun], periods: float) -> list[Table]:
    bound = periods + 1
    mine = Table(
        f"Hot key, {len(runs)} runs: refresher's origin calls (bound: TTL periods + 1 = {bound:g}), "
        "redundant reloads and refresh tasks published",
        ["run", "seconds", "load avg start / end",
         *(f"{LABELS[n]}: {c}" for n in REFRESHERS for c in ("origin calls", "redundant reloads", "tasks"))],
        notes=["The bound is Window's contract, one refresh per TTL period; XFetch refreshes earlier by design, "
               "so it can refresh more often than that. Redundant reloads apply to both."],
    )
    others = Table(
        f"Hot key, the same {len(runs)} runs: the other strategies, origin calls / redundant reloads / "
        "background refreshes",
        ["run", *(LABELS[n] for n in BASELINES)],
        notes=["Background refreshes: regeneration threads started (dogpile.cache, probabilistic); naive and "
               "lock-poll load inline."],
    )
    for i, r in enumerate(runs, 1):
        m = r.outcome.measured
        mine.add(i, r.seconds, f"{r.load[0]:.2f} / {r.load[1]:.2f}",
                 *(int(m[n][c]) for n in REFRESHERS for c in ("calls", "redundant", "tasks")))
        others.add(i, *(" / ".join(f"{m[n][c]:,.0f}" for c in ("calls", "redundant", "tasks")) for n in BASELINES))
    total = {n: {c: sum(r.outcome.measured[n][c] for r in runs) for c in ("calls", "redundant", "tasks")}
             for n in (*REFRESHERS, *BASELINES)}
    loads = [x for r in runs for x in r.load]
    mine.add("all", sum(r.seconds for r in runs), f"{min(loads):.2f} to {max(loads):.2f}",
             *(int(total[n][c]) for n in REFRESHERS for c in ("calls", "redundant", "tasks")))
    others.add("all", *(" / ".join(f"{total[n][c]:,.0f}" for c in ("calls", "redundant", "tasks")) for n in BASELINES))
    return [mine, others, p99_table(runs)]


def p99_table(runs: Sequence[HotRun]) -> Table:
    """Issue 12's hot-key target, run by run: refresher's p99 at most naive's, in the same run."""
    table = Table(
        f"Hot key, the same {len(runs)} runs: p99 read latency, refresher (Window) against naive (issue 12: at most "
        "naive's, in the same run)",
        ["run", "refresher p50 ms", "refresher p99 ms", "naive p50 ms", "naive p99 ms", "p99 ratio", "reads > 50 ms "
         "(refresher / naive)", "reads (refresher / naive)", "target"],
    )
    for i, r in enumerate(runs, 1):
        mine, naive = r.outcome.measured["refresher"], r.outcome.measured["naive"]
        table.add(i, mine["p50"], mine["p99"], naive["p50"], naive["p99"], f"{mine['p99'] / naive['p99']:.2f}x",
                  f"{mine['slow']:,.0f} / {naive['slow']:,.0f}", f"{mine['reads']:,.0f} / {naive['reads']:,.0f}",
                  "MET" if mine["p99"] <= naive["p99"] else "MISSED")
    met = sum(1 for r in runs if r.outcome.measured["refresher"]["p99"] <= r.outcome.measured["naive"]["p99"])
    table.notes.append(f"Met in {met} of {len(runs)} runs.")
    return table


def findings(runs: Sequence[HotRun], periods: float) -> list[str]:
    out = []
    for name in REFRESHERS:
        redundant = [int(r.outcome.measured[name]["redundant"]) for r in runs]
        calls = [int(r.outcome.measured[name]["calls"]) for r in runs]
        within = sum(1 for c in calls if c <= periods + 1)
        out.append(f"**{LABELS[name]}**: redundant reloads {', '.join(map(str, redundant))} "
                   f"({sum(1 for x in redundant if x == 0)} of {len(runs)} runs with none); origin calls "
                   f"{', '.join(map(str, calls))}"
                   + (f" ({within} of {len(runs)} runs within {periods + 1:g})." if name == "refresher" else "."))
    return out


def section(machine: Sequence[tuple[str, str]], runs: Sequence[HotRun], periods: float) -> str:
    parts = [f"## {TITLE}", "",
             "Written by `python -m bench --only hot --runs N` (`bench/runs.py`), apart from the full run above, "
             "with its own commit, date and load: the hot-key scenario (table 2) run N times in one invocation, "
             "against one redis-server, one `celery -A workers worker -P solo` and the same reader processes, "
             "each run on keys of its own. A full `make bench` keeps this section as it is.", "",
             "| what | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in machine), ""]
    for table in tables(runs, periods):
        parts += [table.markdown(), ""]
    parts += [f"{finding}\n" for finding in findings(runs, periods)]
    last = runs[-1].outcome
    if last.profile is not None:  # the last run's (2d): where a read's CPU goes
        parts += [last.profile.markdown(), "", *(f"{finding}\n" for finding in last.findings)]
    return "\n".join(parts)
