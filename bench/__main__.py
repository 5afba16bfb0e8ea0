"""`python -m bench [--quick] [--out DIR] [--only SCENARIO [--runs N]]`: run every scenario, print
the tables, write the docs. `--only` runs one scenario, `--runs` times, and prints its tables;
`--only hot` also writes its runs side by side as one section of benchmarks.md, leaving the rest,
and `--only async [--runs N]` runs the asyncio scenarios (cold_async, hot_async, hit_async) and
writes them, with their targets run by run, as another section. `--only near [--runs N]` runs the
near-cache scenario (6a to 6f of a full run) and writes its own section the same way;
`--only hit [--runs N]` writes its runs' tables (3, 3d, 3e) as a section too, and `--only many_keys`
its tables (4a to 4d, with the refresh throughput per worker process) as another."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import redis

from bench import docs, machine, runs
from bench.context import Context
from bench.plot import hot_key_png
from bench.readers import ReaderPool
from bench.report import targets_table
from bench.scale import FULL, QUICK, Scale
from bench.scenarios import Outcome, bulk, cold, hit, hot, many_keys, near
from bench.workloads import HOT_TTL_ENV
from tests.support.servers import RedisServer, WorkerProcess

# In this order: each asyncio scenario after its sync twin, and they and the near cache's
# (whose hot key the worker refreshes) before many_keys, which stops the shared worker.
SCENARIOS: dict[str, Callable[[Context], Outcome]] = {
    "cold": cold.run, "cold_async": cold.run_async, "hot": hot.run, "hot_async": hot.run_async,
    "hit": hit.run, "hit_async": hit.run_async, "near": near.run, "many_keys": many_keys.run, "bulk": bulk.run,
}
GROUPS = {"async": ("cold_async", "hot_async", "hit_async")}
# Scenarios whose `--only` run writes a section of its own, with their targets run by run.
ALONE = {"near": near.run}
# The scenarios whose repeated runs (--runs N) need keys of their own, given by a suffix.
KEYED: dict[str, Callable[[Context, str], Outcome]] = {
    "cold": cold.run, "cold_async": cold.run_async, "hot": hot.run, "hot_async": hot.run_async, **ALONE,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="everything scaled down: under a minute")
    parser.add_argument("--out", type=Path, default=machine.ROOT / "docs",
                        help="where benchmarks.md and hot-key.png go (default: docs/)")
    parser.add_argument("--only", choices=[*SCENARIOS, *GROUPS],
                        help="run this scenario (or group) only; docs: --only hot, hit, async and near write their own sections")
    parser.add_argument("--runs", type=int, default=1, help="with --only: how many times to run it (default 1)")
    args = parser.parse_args(argv)
    if args.runs < 1 or (args.runs > 1 and not args.only):
        parser.error("--runs takes a positive count, and more than 1 only with --only")
    scale = QUICK if args.quick else FULL
    args.out.mkdir(parents=True, exist_ok=True)
    started, load_at_start = time.monotonic(), os.getloadavg()[0]
    command = " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])])
    if args.only:
        return _only(args.only, args.runs, scale, args.out, command, load_at_start)

    with _running(scale) as ctx:
        outcomes = []
        for step, (name, scenario) in enumerate(SCENARIOS.items(), 1):
            _starting(f"[{step}/{len(SCENARIOS)}] {name}")
            t0 = time.monotonic()
            outcomes.append(scenario(ctx))
            for table in outcomes[-1].tables:
                print(table.text() + "\n", flush=True)
            print(f"({name}: {time.monotonic() - t0:.0f} s)\n", flush=True)
        described = machine.describe(ctx.control, command, load_at_start)

    targets = targets_table([t for o in outcomes for t in o.targets])
    print(targets.text())
    hot_outcome = next(o for o in outcomes if isinstance(o, hot.HotOutcome))
    hot_key_png(hot_outcome.series, scale.hot_ttl, scale.hot_ttl * scale.hot_periods, args.out / docs.PNG)
    path = docs.write(args.out, described, targets, outcomes)
    print(f"\nwrote {path} and {args.out / docs.PNG} in {time.monotonic() - started:.0f} s")
    return 0


def _only(name: str, count: int, scale: Scale, out: Path, command: str, load_at_start: float) -> int:
    """Run one scenario (or a group) `count` times against the same servers, worker and readers as a full run."""
    done: list[runs.HotRun] = []
    by_run: list[docs.GroupRun] = []
    with _running(scale) as ctx:
        for i in range(1, count + 1):
            by_run.append(docs.GroupRun())
            for scenario in GROUPS.get(name, (name,)):
                _starting(f"[run {i}/{count}] {scenario}")
                t0, load0 = time.monotonic(), os.getloadavg()[0]
                # Repeated hot and cold runs get keys of their own: the earlier runs' values and call logs stay apart.
                suffix = f"-run{i}" if i > 1 else ""
                outcome = KEYED[scenario](ctx, suffix) if scenario in KEYED else SCENARIOS[scenario](ctx)
                seconds, load1 = time.monotonic() - t0, os.getloadavg()[0]
                by_run[-1].loads += [load0, load1]
                by_run[-1].seconds += seconds
                for table in outcome.tables:
                    print(table.text() + "\n", flush=True)
                for finding in outcome.findings:
                    print(finding + "\n", flush=True)
                print(f"({scenario} run {i} of {count}: {seconds:.0f} s, load average {load0:.2f} -> {load1:.2f})\n",
                      flush=True)
                by_run[-1].outcomes.append(outcome)
                if isinstance(outcome, hot.HotOutcome):
                    done.append(runs.HotRun(outcome, seconds, (load0, load1)))
        described = machine.describe(ctx.control, command, load_at_start)
    if done:
        for table in runs.tables(done, scale.hot_periods):
            print(table.text() + "\n")
        print("\n".join(runs.findings(done, scale.hot_periods)))
        print(f"\nwrote section \"{runs.TITLE}\" of {docs.write_runs(out, runs.section(described, done, scale.hot_periods))}")
    if name in GROUPS:
        for i, run in enumerate(by_run, 1):
            print(f"run {i}: " + targets_table([t for o in run.outcomes for t in o.targets]).text())
        print(f"\nwrote section \"{docs.ASYNC_TITLE}\" of {docs.write_async(out, docs.async_section(described, by_run))}")
    if name in ALONE:
        for i, run in enumerate(by_run, 1):
            print(f"run {i}: " + targets_table(run.targets).text())
        print(f"\nwrote section \"{docs.NEAR_TITLE}\" of {docs.write_near(out, docs.near_section(described, by_run))}")
    if name == "many_keys":
        print(f"\nwrote section \"{docs.MANY_TITLE}\" of "
              f"{docs.write_many_keys(out, docs.many_keys_section(described, by_run[-1]))}")
    if name == "hit":
        print(f"\nwrote section \"{docs.HIT_TITLE}\" of {docs.write_hit(out, docs.hit_section(described, by_run))}")
    return 0


def _starting(what: str) -> None:
    """A line before each scenario: a full run takes many minutes, and a table shows only at its end."""
    print(f"{what}: running", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _running(scale: Scale) -> Iterator[Context]:
    """The bench's own redis-server, its reader processes and `celery -A workers worker -P solo`."""
    with contextlib.ExitStack() as running:
        server = RedisServer()
        server.start()
        running.callback(server.stop)
        # Set before any reader process, worker or bench.loaders import: they all read these.
        os.environ["REFRESHER_REDIS_URL"] = server.url
        os.environ[HOT_TTL_ENV] = str(scale.hot_ttl)
        for name in ("REFRESHER_BROKER_URL", "REFRESHER_NAMESPACE", "REFRESHER_QUEUE"):
            os.environ.pop(name, None)
        control = running.enter_context(contextlib.closing(redis.Redis.from_url(server.url)))
        pool = ReaderPool(scale.processes)
        running.callback(pool.close)
        worker = WorkerProcess(server.url, loaders="bench.loaders", pool="solo")
        running.callback(worker.stop)
        worker.start()
        yield Context(scale, server.url, control, pool, worker)


if __name__ == "__main__":
    sys.exit(main())
