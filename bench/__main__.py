"""`python -m bench [--quick] [--out DIR]`: run every scenario, print the tables, write the docs."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

import redis

from bench import docs, machine
from bench.context import Context
from bench.plot import hot_key_png
from bench.readers import ReaderPool
from bench.report import targets_table
from bench.scale import FULL, QUICK
from bench.scenarios import bulk, cold, hit, hot, many_keys
from bench.workloads import HOT_TTL_ENV
from tests.support.servers import RedisServer, WorkerProcess


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="everything scaled down: under a minute")
    parser.add_argument("--out", type=Path, default=machine.ROOT / "docs",
                        help="where benchmarks.md and hot-key.png go (default: docs/)")
    args = parser.parse_args(argv)
    scale = QUICK if args.quick else FULL
    args.out.mkdir(parents=True, exist_ok=True)
    started, load_at_start = time.monotonic(), os.getloadavg()[0]

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
        ctx = Context(scale, server.url, control, pool, worker)
        outcomes = []
        for scenario in (cold, hot, hit, many_keys, bulk):
            t0 = time.monotonic()
            outcomes.append(scenario.run(ctx))
            for table in outcomes[-1].tables:
                print(table.text() + "\n", flush=True)
            print(f"({scenario.__name__.rsplit('.', 1)[-1]}: {time.monotonic() - t0:.0f} s)\n", flush=True)
        command = " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])])
        described = machine.describe(control, command, load_at_start)

    targets = targets_table([t for o in outcomes for t in o.targets])
    print(targets.text())
    hot_outcome = next(o for o in outcomes if isinstance(o, hot.HotOutcome))
    hot_key_png(hot_outcome.series, scale.hot_ttl, scale.hot_ttl * scale.hot_periods, args.out / docs.PNG)
    path = docs.write(args.out, described, targets, outcomes)
    print(f"\nwrote {path} and {args.out / docs.PNG} in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
