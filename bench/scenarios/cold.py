"""1. Cold stampede: every reader process misses the same key at the same moment."""

from __future__ import annotations

import sys

from bench import origin
from bench.context import Context
from bench.measure import latency_ms
from bench.readers import Job
from bench.report import Table, Target
from bench.scenarios import Outcome
from bench.strategies import LABELS, NAMES
from bench.workloads import COLD


def run(ctx: Context) -> Outcome:
    s = ctx.scale
    table = Table(
        f"1. Cold stampede: {s.processes} processes x {s.cold_threads} threads miss one key "
        f"(loader {COLD.delay * 1000:.0f} ms)",
        ["strategy", "origin calls", "reads", "errors", "p50 ms", "p99 ms", "max ms"],
    )
    p99: dict[str, float] = {}
    calls: dict[str, int] = {}
    for name in NAMES:
        key = f"cold-{name}"
        job = Job(ctx.spec(name, COLD.name), (key,), s.cold_threads)
        reports, _ = ctx.pool.run([job] * s.processes)
        latencies = [x for r in reports for x in r.latencies]
        errors = [e for r in reports for e in r.errors]
        if errors:
            print(f"cold/{name}: {len(errors)} errors, the first:\n{errors[0]}", file=sys.stderr)
        calls[name] = origin.calls(key)
        p50, p99[name], worst = latency_ms(latencies)
        table.add(LABELS[name], calls[name], len(latencies), len(errors), p50, p99[name], worst)
    limit = 1.1 * p99["naive"]
    targets = [
        Target("cold", "refresher: exactly 1 origin call", f"{calls['refresher']}", calls["refresher"] == 1),
        Target("cold", "refresher p99 <= 1.1x naive p99",
               f"{p99['refresher']:.0f} ms vs {limit:.0f} ms ({p99['refresher'] / p99['naive']:.2f}x)",
               p99["refresher"] <= limit),
    ]
    return Outcome([table], targets)
